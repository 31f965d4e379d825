"""A poller's own HTTP server for operators: ``/metrics``, ``/healthz`` and ``/readyz``.

A bare ASGI app (three fixed paths need no framework) served by uvicorn inside the poller's event
loop, so a scrape reads the same ``Metrics`` the poller updates.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable, Iterator

import structlog
import uvicorn
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from core.metrics import CONTENT_TYPE, Metrics
from core.readiness import not_ready_body

log = structlog.get_logger("poller.ops")

ReadinessCheck = Callable[[], Awaitable[dict[str, str]]]


class OpsApp:
    """Answers the three ops paths; anything else is 404, any method but GET and HEAD 405."""

    def __init__(self, metrics: Metrics, readiness: ReadinessCheck) -> None:
        self.metrics = metrics
        self.readiness = readiness

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is off in the server config; nothing else is expected
        response = await self._respond(scope["path"], scope["method"])
        await response(scope, receive, send)

    async def _respond(self, path: str, method: str) -> Response:
        if path not in ("/metrics", "/healthz", "/readyz"):
            return JSONResponse({"detail": "not found"}, status_code=404)
        if method not in ("GET", "HEAD"):
            return JSONResponse({"detail": "method not allowed"}, status_code=405, headers={"Allow": "GET"})
        if path == "/metrics":
            return Response(self.metrics.render(), media_type=CONTENT_TYPE)
        if path == "/healthz":
            return JSONResponse({"status": "ok"})
        problems = await self.readiness()
        if problems:
            return JSONResponse(not_ready_body(problems), status_code=503, headers={"Retry-After": "5"})
        return JSONResponse({"status": "ready"})


class _Config(uvicorn.Config):
    """uvicorn settings that leave logging alone: its own setup would reset the process-wide
    ``uvicorn.*`` loggers (levels, handlers) that ``core.logging`` configured."""

    def configure_logging(self) -> None:
        pass


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: SIGINT/SIGTERM belong to the poller, which stops us."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class OpsServer:
    """Serves an ``OpsApp`` on ``host:port`` as a task of the running loop (port 0: any free port)."""

    def __init__(self, app: OpsApp, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self.port = port
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bind now (a taken port fails here, loudly, not later in a task) and start serving."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.create_server((self.host, self.requested_port), family=family)
        self.port = sock.getsockname()[1]
        # Requests are logged (or not) by the process's logging setup, as the API's are.
        config = _Config(self.app, lifespan="off", log_config=None)
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="ops-server")
        # The socket already listens (connections queue), but wait until uvicorn accepts them.
        while not self._server.started and not self._task.done():
            await asyncio.sleep(0.01)
        if self._task.done():
            self._task.result()  # raise what stopped it
        log.info("ops_server_started", host=self.host, port=self.port)

    async def stop(self) -> None:
        """Stop serving and wait for the server task to end."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._server = self._task = None
