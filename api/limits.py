"""Request limits (OWASP API4) as pure ASGI middleware, independent of routing and auth.

- ``BodyLimit``: refuses a request body over ``max_bytes`` with 413, from ``Content-Length`` up
  front and by counting the bytes actually received (chunked uploads carry no length).
- ``RateLimiter``: token buckets by key, which api/deps.py's ``authenticate`` spends after
  authentication: one per credential that authenticated, one per client address for requests with
  no valid credential; 429 with ``Retry-After``. Buckets live in this process: with several API
  processes each enforces the limit on its own share of the traffic.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Clock = Callable[[], float]


async def _send_json(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = orjson.dumps({"detail": detail})
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    """Raised into the app by ``receive`` once the body passes the cap."""


class BodyLimit:
    """413 for a request body larger than ``max_bytes``."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.detail = f"request body larger than {max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: C901 (per request: inlined)
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0  # h11/httptools refuse a malformed length before we are called
                if declared > self.max_bytes:
                    await _send_json(send, 413, self.detail, {"Connection": "close"})
                    return

        received = 0
        too_large = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            # Once the cap is hit, whatever the app makes of the exception (FastAPI turns a failed
            # body read into a 400) is dropped; the 413 below is the answer.
            if too_large:
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            pass
        if too_large and not response_started:
            await _send_json(send, 413, self.detail, {"Connection": "close"})


@dataclass
class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; one request takes one token."""

    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """Take a token: 0.0 if there was one, else the seconds until there will be."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def full(self, now: float) -> bool:
        """Whether the bucket would be full by ``now`` (so forgetting it changes nothing)."""
        return self.tokens + (now - self.updated) * self.rate >= self.burst


class RateLimiter:
    """One token bucket per credential key; full buckets are forgotten so memory stays bounded."""

    PRUNE_ABOVE = 10_000

    def __init__(self, rate: float, burst: int, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self.buckets: dict[bytes, TokenBucket] = {}

    @property
    def enabled(self) -> bool:
        """0 for the rate or the burst turns the limiter off."""
        return self.rate > 0 and self.burst > 0

    def retry_after(self, key: bytes) -> int:
        """0 if ``key`` may go ahead now, else whole seconds (at least 1) to wait."""
        if not self.enabled:
            return 0
        now = self.clock()
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= self.PRUNE_ABOVE:
                self._prune(now)
            bucket = self.buckets[key] = TokenBucket(self.rate, self.burst, self.burst, now)
        wait = bucket.take(now)
        return 0 if wait <= 0 else max(1, math.ceil(wait))

    def _prune(self, now: float) -> None:
        self.buckets = {k: b for k, b in self.buckets.items() if not b.full(now)}
        if len(self.buckets) >= self.PRUNE_ABOVE:
            # Many keys, none idle long enough (addresses that rotate): keep the newer half, so
            # memory stays bounded and pruning does not run again on every new key.
            newest = sorted(self.buckets.items(), key=lambda kv: kv[1].updated)[len(self.buckets) // 2 :]
            self.buckets = dict(newest)
