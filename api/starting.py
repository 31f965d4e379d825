"""Until the API has its database pool: 503 with ``Retry-After`` on every route that needs one.

An API started while PostgreSQL is down listens at once and opens its pool in the background
(``api/app.py``, ``core/db_wait.py``); meanwhile the probes answer (``/healthz`` 200, ``/readyz``
503 naming the database), so do the documentation pages, and every other request gets the same
503 a lost database gives rather than a 500 from a missing pool.
"""

from __future__ import annotations

import orjson
from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

from api.docs_pages import DOCS_URL, REDIRECT_URL, REDOC_URL, STATIC_URL
from api.errors import RETRY_AFTER_SECONDS

_NO_DATABASE = {"/healthz", "/readyz", "/metrics", "/openapi.json", DOCS_URL, REDIRECT_URL, REDOC_URL}
_DETAIL = "the database is unavailable right now (the service is starting); retry shortly"
_BODY = orjson.dumps({"detail": _DETAIL})
_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(_BODY)).encode()),
    (b"retry-after", RETRY_AFTER_SECONDS.encode()),
]


def needs_database(path: str) -> bool:
    """Whether the route at ``path`` reads or writes the database (the probes and docs do not)."""
    return path not in _NO_DATABASE and not path.startswith(STATIC_URL + "/")


class UntilConnected:
    """Answers 503 to requests that need the database while ``state.pool`` is not set yet."""

    def __init__(self, app: ASGIApp, *, state: State) -> None:
        self.app = app
        self.state = state
        self._connected = False  # once set, one attribute test per request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._connected and scope["type"] == "http":
            if getattr(self.state, "pool", None) is not None:
                self._connected = True
            elif needs_database(scope["path"]):
                await send({"type": "http.response.start", "status": 503, "headers": _HEADERS})
                await send({"type": "http.response.body", "body": _BODY})
                return
        await self.app(scope, receive, send)
