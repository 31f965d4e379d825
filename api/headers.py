"""Response headers every answer carries, ``Allow`` on a 405, and HEAD wherever GET is.

Pure ASGI middleware, so the answers of the other middleware (413) and of the error handlers
get the same headers as the routes' own.
"""

from __future__ import annotations

import functools
import re

from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute, Router, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Nothing here is for a cache (answers carry payloads, keys and tokens), for another site's frame
# or for guessing a content type. A page that needs more (api/docs_pages.py) sets its own policy.
STRICT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
_ALWAYS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"content-security-policy", STRICT_CSP.encode()),
)


@functools.cache
def _regex(template: str) -> re.Pattern[str]:
    return compile_path(template)[0]


def allowed_methods(routes: list[BaseRoute], path: str) -> list[str]:
    """Every method some route of ``path`` answers (HEAD wherever GET), sorted."""
    methods: set[str] = set()
    # Route contexts carry the included routers' prefixes; the fast paths (api/fast_paths.py)
    # have no methods of their own and stand in for FastAPI routes listed here anyway.
    for route in iter_route_contexts(routes):
        if route.methods and route.path and _regex(route.path).match(path):
            methods |= route.methods
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


class SecurityHeaders:
    """Adds the ``_ALWAYS`` headers a response does not set itself; a 405 names all its methods."""

    def __init__(self, app: ASGIApp, *, router: Router) -> None:
        self.app = app
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in _ALWAYS if name not in present]
                if message["status"] == 405:
                    # Starlette names the methods of the first route that matched the path only.
                    allow = ", ".join(allowed_methods(self.router.routes, scope["path"])).encode()
                    headers = [(n, v) for n, v in headers if n.lower() != b"allow"] + [(b"allow", allow)]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class HeadAsGet:
    """Answers HEAD as GET without the body, for every route (FastAPI's routes take GET only)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                # Content-Length stays that of the GET answer, as RFC 9110 allows for HEAD.
                message = {**message, "body": b""}
            await send(message)

        # A copy: the server keeps its own scope, and knows the request was a HEAD.
        await self.app({**scope, "method": "GET"}, receive, without_body)
