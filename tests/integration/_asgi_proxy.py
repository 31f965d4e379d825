"""An ASGI app that forwards to whichever app the running test installed (for schemathesis).

The schemathesis schema is built once at collection, but each test has its own app (its own
database); the schema's ``app`` is this proxy, so every request schemathesis makes, its checks'
extra probes included, reaches the current test's app.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class CurrentApp:
    """Forwards every ASGI call (lifespan included) to ``self.app``, set by a fixture."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is None:
            raise RuntimeError("no app installed: request the fixture that sets CurrentApp.app")
        await self.app(scope, receive, send)
