"""Request latency by route template, method and status, as a pure ASGI middleware.

The route label is the matched route's template (``/reminders/{reminder_id}``), never the raw
path, so ids in URLs cannot multiply the series; a request no route matched (a 404, or one
refused by a middleware before routing, such as a 429) is ``unmatched``.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.metrics import Metrics

UNMATCHED = "unmatched"
# Any token is a valid HTTP method: unknown ones share one label rather than each adding a series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    """Observes every HTTP request's duration in ``metrics.http_latency``."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.histogram = metrics.http_latency
        # The labelled child per (method, route, status): labels() checks and locks on every call.
        # Bounded: methods and route templates are fixed sets, status codes a few dozen.
        self._children: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            # The router stores the matched route in the (shared) scope; FastAPI does so for a
            # path match with the wrong method (405) too.
            route = scope.get("route")
            # path_format: the template without convertors ("/reminders/{reminder_id}").
            template = getattr(route, "path_format", None) or getattr(route, "path", None) or UNMATCHED
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            key = (method, template, status)
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = self.histogram.labels(method, template, str(status))
            child.observe(time.perf_counter() - started)
