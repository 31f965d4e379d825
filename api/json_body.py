"""FastAPI routes whose JSON bodies are read by ``core.jsontext`` instead of ``json.loads``.

The standard parser behind ``Request.json`` raises ``RecursionError`` on deep nesting (a 500),
keeps the last of duplicate keys, lets lone surrogates and ``NaN`` in, and turns long decimals
into the nearest double. ``core.jsontext.loads`` refuses the first four with a
``JsonTextError``, a ``JSONDecodeError``: FastAPI answers it with its 422 ``json_invalid``,
which ``api.errors`` words with the problem and where it is.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from api.deps import AUTH_DEPENDENCIES
from core import jsontext


class JsonRequest(Request):
    """A request whose ``json()`` is ``core.jsontext.loads`` of the body."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = jsontext.loads(await self.body())
        return self._json


class JsonRoute(APIRoute):
    """An ``APIRoute`` that hands its endpoint a ``JsonRequest`` (``APIRouter(route_class=...)``)
    and checks the route's credential before the body is read."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        # FastAPI reads and parses the body before it solves any dependency: a stranger's broken
        # body got a 422 describing it (and cost the parse) instead of a 401. The check keeps the
        # principal in the scope, so the route's own dependency neither repeats nor recharges it.
        checks = [d.call for d in self.dependant.dependencies if d.call in AUTH_DEPENDENCIES]

        async def strict_json(request: Request) -> Response:
            strict = JsonRequest(request.scope, request.receive)
            for check in checks:
                await check(strict)
            return await handler(strict)

        return strict_json
