"""A request id for every call: taken from ``X-Request-ID`` when sane, else made; logged and audited."""

from __future__ import annotations

import os
import random
import re
import uuid
from contextvars import ContextVar

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
_HEADER_BYTES = HEADER.encode()
SANE_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
_SANE = re.compile(SANE_PATTERN)

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


# Request ids need to be unique, not unpredictable: uuid4() reads the OS random source (a system
# call) on every request, while this generator, seeded from it once per process (and again in a
# forked child), makes the same version-4 UUIDs for a fraction of the cost.
_random = random.Random()
os.register_at_fork(after_in_child=_random.seed)


def new_request_id() -> str:
    """A random version-4 UUID as 32 hex digits."""
    return uuid.UUID(int=_random.getrandbits(128), version=4).hex


class RequestIdMiddleware:
    """Binds the request id to the context (structlog, audit) and echoes it in the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = ""
        for name, value in scope["headers"]:
            if name == _HEADER_BYTES:
                given = value.decode("latin-1")
                break
        # A caller's id is kept only if harmless in logs; anything else is replaced.
        request_id = given if _SANE.match(given) else new_request_id()
        token = request_id_var.set(request_id)
        header = (_HEADER_BYTES, request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        # bind/reset rather than the bound_contextvars() context manager: the same, minus a generator.
        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.reset_contextvars(**bound)
            request_id_var.reset(token)
