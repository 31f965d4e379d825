"""``POST /reminders/`` and ``GET /reminders/{reminder_id}`` without FastAPI's per-request machinery.

Routing, dependency solving and body handling in FastAPI cost more CPU than everything these two
endpoints do themselves (about half of a create or a read). Kept for the API targets of
docs/benchmarks.md (2,500 creates/s, 4,000 reads/s): with only the FastAPI routes, the same app
made 2,243 and 2,247 creates/s (p99 61 ms) and 4,015 and 3,937 reads/s, against 3,147 and 2,955
creates/s and 5,503 and 5,191 reads/s with these (loadtests/api_bench.py, 2 pairs, 2026-12-03),
0.51 against 0.32 ms of API CPU per create. Two plain Starlette routes, placed
before the FastAPI ones, take the ordinary requests of these endpoints and call the very functions
FastAPI would (the ``Reader``/``Writer`` dependencies, then the endpoint), in FastAPI's order, so
the answers, headers and errors are the same: exceptions propagate to the app's handlers as from
any route, and the metrics see the same route template.

Anything out of the ordinary is *declined*: handed, unchanged (with the body already read), to
the FastAPI router, which answers as it always did. Declined are a create whose ``Content-Type`` is
not exactly ``application/json``, that carries an ``Idempotency-Key``, or whose body is not valid
JSON or not a valid ``ReminderCreate`` (FastAPI then makes its usual 422), and a read whose id is
not a UUID in its canonical 8-4-4-4-12 form. The OpenAPI schema still comes from the FastAPI
routes; these are not in it.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from fastapi import FastAPI, Request, Response
from pydantic import ValidationError
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import Principal
from api.deps import require_read, require_write
from api.routes import reminders
from api.schemas import ReminderCreate
from core import jsontext

PREFIX = "/reminders/"
_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ID_END = len(PREFIX) + 36
# Set on a declined request, so the fast routes let it through to FastAPI's.
DECLINED = "reminders.fast_path_declined"

Check = Callable[[Request], Awaitable[Principal]]


class _FastRoute(BaseRoute):
    """One endpoint's fast path; ``path`` is the FastAPI route's template (the metrics label)."""

    def __init__(self, path: str, method: str, fallback: ASGIApp) -> None:
        self.path = path
        self.method = method
        self.fallback = fallback

    @abstractmethod
    def _path_matches(self, path: str) -> bool:
        """Whether a request path is this endpoint's (the subclasses know its shape)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if (
            scope["type"] == "http"
            and scope["method"] == self.method
            and not scope.get("root_path")
            and DECLINED not in scope
            and self._path_matches(scope["path"])
        ):
            return Match.FULL, {"route": self}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)

    async def decline(self, scope: Scope, receive: Receive, send: Send, body: bytes | None) -> None:
        """Hand the request to the FastAPI router; ``body``, if already read, is received again."""
        scope[DECLINED] = True
        if body is None:
            await self.fallback(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would

        await self.fallback(scope, replay, send)


class CreateRoute(_FastRoute):
    """``POST /reminders/`` with a JSON body and no ``Idempotency-Key``."""

    def __init__(self, fallback: ASGIApp, writer: Check = require_write) -> None:
        super().__init__(PREFIX, "POST", fallback)
        self.writer = writer

    def _path_matches(self, path: str) -> bool:
        return path == PREFIX

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        content_types = 0
        plain_json = False
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_types += 1
                plain_json = value == b"application/json"
            elif name == b"idempotency-key":
                plain_json = False
                break
        request = Request(scope, receive)
        # Authenticate before reading or validating anything (a cron expression can cost ms): the
        # principal stays in the scope, so FastAPI does not authenticate a declined request again.
        principal = await self.writer(request)
        body = await request.body()
        if not (plain_json and content_types == 1 and body):
            await self.decline(scope, receive, send, body)
            return
        reminder: ReminderCreate | None = None
        try:
            # As the FastAPI route (api/json_body.py): the strict parser, then the model.
            reminder = ReminderCreate.model_validate(jsontext.loads(body))
        except (ValueError, ValidationError):  # JsonTextError and UnicodeDecodeError are ValueErrors
            pass
        if reminder is None:  # declined outside the except block: no chained exception in its logs
            await self.decline(scope, receive, send, body)
            return
        response: Response = await reminders.create_reminder(request, principal, reminder, None)
        await response(scope, receive, send)


class GetRoute(_FastRoute):
    """``GET /reminders/{reminder_id}`` with a canonical UUID."""

    def __init__(self, fallback: ASGIApp, reader: Check = require_read) -> None:
        super().__init__(PREFIX + "{reminder_id}", "GET", fallback)
        self.reader = reader

    def _path_matches(self, path: str) -> bool:
        return (
            len(path) == _ID_END
            and path.startswith(PREFIX)
            and _CANONICAL_UUID.fullmatch(path, len(PREFIX)) is not None
        )

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        principal = await self.reader(request)
        reminder_id = UUID(scope["path"][len(PREFIX) :])
        response: Response = await reminders.get_reminder(request, principal, reminder_id)
        await response(scope, receive, send)


def install_fast_paths(app: FastAPI) -> None:
    """Put the fast routes first in the app's router (after the FastAPI routes are included)."""
    router = app.router
    router.routes[0:0] = [CreateRoute(router), GetRoute(router)]
