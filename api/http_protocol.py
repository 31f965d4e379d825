"""uvicorn's httptools protocol with a cap on the request head and a deadline for it (slowloris).

uvicorn (0.55) bounds neither for httptools: ``h11_max_incomplete_event_size`` is h11's only, and
``timeout_keep_alive`` runs only between requests and is reset by every byte received, so a
client trickling a header, or one that connects and sends nothing, holds its connection for ever,
and a 64 MB header was buffered whole (4 s of parsing, /healthz stalled meanwhile). This subclass
counts the bytes of each request's head (request line and headers) as they arrive and answers 431
once they pass ``max_header_bytes``, and closes a connection whose head is not complete
``header_timeout`` seconds after it opened or after the request's first byte (408 if some arrived).
Started with ``--http api.http_protocol:HttpToolsProtocol`` (cli/up.py's ``api_command``); the
limits come from the settings the app was made with (``configure``, called by ``create_app``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HttpToolsProtocol

from core.settings import Settings

_END_OF_HEAD = b"\r\n\r\n"


@dataclass(frozen=True, slots=True)
class HeadLimits:
    """How large a request head may be, and how long it may take to arrive."""

    max_header_bytes: int = 32 * 1024
    header_timeout: float = 10.0


_limits = HeadLimits()


def configure(settings: Settings) -> None:
    """Take the limits from ``settings`` (the app's, in each worker process before it serves)."""
    global _limits
    _limits = HeadLimits(settings.max_header_bytes, settings.header_timeout)


def _refusal(status: int, reason: str, detail: str) -> bytes:
    body = orjson.dumps({"detail": detail})
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\nx-content-type-options: nosniff\r\n"
        "cache-control: no-store\r\n\r\n"
    ).encode() + body


class HttpToolsProtocol(_HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing request heads that are too large or too slow."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = _limits
        self._in_head = True
        self._head_bytes = 0
        self._tail = b""  # the last bytes of the head so far: its end may span two reads
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            before = self._head_bytes
            self._head_bytes += len(data)
            if self._head_bytes > self._limits.max_header_bytes:
                # The read may hold the end of the head and then the body: too large only if the
                # head does not end within the allowance.
                room = self._limits.max_header_bytes - before + len(self._tail)
                if _END_OF_HEAD not in (self._tail + data)[:room]:
                    self._refuse(
                        431,
                        "Request Header Fields Too Large",
                        f"request headers larger than {self._limits.max_header_bytes} bytes",
                    )
                    return
            self._tail = data[-(len(_END_OF_HEAD) - 1) :]
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_head_deadline()

    def on_message_complete(self) -> None:
        # The next bytes are the next request's head. Not reset in on_message_begin: the parser
        # calls that while it reads the first chunk of a head, which data_received has already
        # counted, and a head arriving in several reads would then be measured from its second.
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0
        self._tail = b""

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm_head_deadline()
        super().on_headers_complete()

    def _arm_head_deadline(self) -> None:
        # From the connection, or from the first byte of a later request: whichever started first.
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self._limits.header_timeout, self._head_too_slow)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if not self._in_head or self.transport.is_closing():
            return
        if self._head_bytes == 0:
            self.transport.close()  # nothing asked: just hang up
            return
        timeout = self._limits.header_timeout
        self._refuse(408, "Request Timeout", f"request headers not received within {timeout} s")

    def _refuse(self, status: int, reason: str, detail: str) -> None:
        self._in_head = False
        self._disarm_head_deadline()
        if not self.transport.is_closing():
            self.transport.write(_refusal(status, reason, detail))
            self.transport.close()
