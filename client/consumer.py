"""The reference consumer assistants import: take events from Redis, handle them, ack over REST.

Each consumer owns a processing list, ``f"{queue}:processing:{consumer_id}"`` (for the default
queue ``queue:to_assistant:processing:<consumer_id>``). ``BLMOVE`` hands an event from the queue to
that list in one atomic step, so an event is always in Redis (in the queue or in the processing list)
and never only in the memory of a consumer that may die. The item leaves the processing list only
once the service has the ack, or once there is nothing left to retry. After a crash, ``reap`` puts
whatever was left there back at the head of the queue. Give every running consumer its own
``consumer_id`` and reuse it on restart, so the restarted process reaps what the dead one held.

Delivery is at least once: a handler may see the same ``event_id`` again (a redelivery with a higher
``attempt``, or a reaped event), and should be idempotent per ``event_id``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast
from uuid import UUID

import httpx
import orjson
import redis.asyncio as redis
import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from client.errors import retry_after
from core.redis_keys import EVENT_QUEUE

log = structlog.get_logger("consumer")

# 404: the service no longer knows the event; 409: it was dead-lettered. Retrying cannot help.
_GONE = frozenset({404, 409})
_PREVIEW_BYTES = 200
# Waits after Redis errors in ``run``: long enough not to spin, short enough to resume soon.
_REDIS_BACKOFF_BASE = 0.5
_REDIS_BACKOFF_MAX = 10.0


@dataclass(frozen=True)
class HandlerResult:
    """What the handler tells the service: the ack's ``result``, ``action`` and ``details``."""

    result: Literal["ok", "error"] = "ok"
    action: Literal["continue", "complete"] = "continue"
    details: dict[str, Any] | None = None


Handler = Callable[[dict[str, Any]], Awaitable[HandlerResult]]
"""Gets the decoded event (docs/design.md); raising means "not handled, redeliver it later"."""

Sleep = Callable[[float], Awaitable[None]]


def processing_key(queue: str, consumer_id: str) -> str:
    """The processing list of one consumer of ``queue``."""
    return f"{queue}:processing:{consumer_id}"


def poison_key(queue: str) -> str:
    """Where items of ``queue`` that are not a readable event are set aside."""
    return f"{queue}:poison"


class _Poison(ValueError):
    """An item that is not an event this consumer can handle and ack."""


def _decode(raw: bytes | str) -> tuple[dict[str, Any], str, str]:
    """The event, its event_id and reminder_id; raises ``_Poison`` when they cannot be read."""
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _Poison(f"not JSON: {exc}") from exc
    if not isinstance(event, dict):
        raise _Poison("not a JSON object")
    payload = event.get("payload")
    event_id = event.get("event_id")
    reminder_id = payload.get("reminder_id") if isinstance(payload, dict) else None
    # Both must be UUIDs: reminder_id goes into the ack URL, and the service rejects anything else.
    try:
        UUID(str(event_id))
        UUID(str(reminder_id))
    except ValueError as exc:
        raise _Poison("event_id or payload.reminder_id missing or not a UUID") from exc
    return event, str(event_id), str(reminder_id)


class Consumer:
    """Moves events from the queue to its processing list, calls the handler, acks, then forgets them.

    Use a Redis client without ``decode_responses`` (the default): with it, an item that is not UTF-8
    cannot be read back at all, so it could not be set aside as poison.
    """

    def __init__(
        self,
        redis: redis.Redis,
        http: httpx.AsyncClient,
        handler: Handler,
        consumer_id: str,
        *,
        queue: str = EVENT_QUEUE,
        block_timeout: float = 1.0,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        ack_attempts: int = 4,
        ack_backoff: float = 0.5,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not consumer_id:
            raise ValueError("consumer_id must not be empty")
        if ack_attempts < 1:
            raise ValueError("ack_attempts must be at least 1")
        self.redis = redis
        self.http = http
        self.handler = handler
        self.consumer_id = consumer_id
        self.queue = queue
        self.processing = processing_key(queue, consumer_id)
        self.poison = poison_key(queue)
        self.block_timeout = block_timeout
        self.ack_attempts = ack_attempts
        self.ack_backoff = ack_backoff
        # ``headers`` carries any credential (a bearer token too); ``api_key`` is the short form.
        self._headers = {**(headers or {}), **({"X-API-Key": api_key} if api_key is not None else {})}
        self._sleep = sleep
        self._log = log.bind(consumer_id=consumer_id, queue=queue)

    async def process_one(self) -> bool:
        """Handle at most one event, waiting up to ``block_timeout``; False when none came."""
        # Redis >= 6 takes a fractional timeout; redis-py annotates it as int.
        timeout = cast(int, self.block_timeout)
        raw = await self.redis.blmove(self.queue, self.processing, timeout, "LEFT", "RIGHT")
        if raw is None:
            return False
        try:
            event, event_id, reminder_id = _decode(raw)
        except _Poison as exc:
            await self._set_aside(raw, str(exc))
            return True

        ids = {"event_id": event_id, "reminder_id": reminder_id, "attempt": event.get("attempt")}
        try:
            outcome = await self.handler(event)
        except Exception:
            # No ack: the service pushes the event again with attempt + 1 after its ack timeout, so
            # keeping it here as well would only make a second copy.
            self._log.exception("handler_failed", **ids)
            await self._forget(raw)
            return True

        if await self._ack(reminder_id, event_id, outcome, ids):
            await self._forget(raw)
        # Otherwise it stays in the processing list; the next reap hands it out again.
        return True

    async def reap(self) -> int:
        """Put back at the head of the queue whatever this consumer's processing list holds."""
        moved = 0
        # One atomic LMOVE per item: a crash mid-reap leaves each item in exactly one of the lists.
        # Taking from the right and pushing to the left keeps the original order at the head.
        while await self.redis.lmove(self.processing, self.queue, "RIGHT", "LEFT") is not None:
            moved += 1
        if moved:
            self._log.warning("reaped", count=moved, processing=self.processing)
        return moved

    async def run(self, stop: asyncio.Event) -> None:
        """Reap, then handle events until ``stop`` is set; rides out Redis outages."""
        needs_reap = True
        failures = 0
        while not stop.is_set():
            try:
                if needs_reap:
                    await self.reap()
                    needs_reap = False
                await self.process_one()
                failures = 0
            except (RedisConnectionError, RedisTimeoutError) as exc:
                # A BLMOVE whose reply was lost, or an LREM that failed, leaves an item in the
                # processing list: reap again once Redis answers, rather than only at the next start.
                needs_reap = True
                failures += 1
                delay = min(_REDIS_BACKOFF_MAX, _REDIS_BACKOFF_BASE * 2 ** (failures - 1))
                self._log.warning("redis_unavailable", error=repr(exc), retry_in=delay, failures=failures)
                await self._sleep(delay)

    async def _ack(
        self, reminder_id: str, event_id: str, outcome: HandlerResult, ids: dict[str, Any]
    ) -> bool:
        """POST the ack, retrying with backoff; True when the item can be dropped from processing."""
        body = {
            "event_id": event_id,
            "result": outcome.result,
            "action": outcome.action,
            "details": outcome.details,
        }
        attempt = 0
        while True:
            attempt += 1
            asked_to_wait: float | None = None
            try:
                response = await self.http.post(
                    f"/reminders/{reminder_id}/ack", json=body, headers=self._headers
                )
            except httpx.TransportError as exc:
                error = repr(exc)
            else:
                # 429 and 503 say when to come back: an ack right after a poller crashed is 503
                # until the next claim records the event (Retry-After: 1).
                if response.status_code in (429, 503):
                    asked_to_wait = retry_after(response.headers.get("Retry-After"))
                if response.is_success:
                    self._log.info("acked", result=outcome.result, action=outcome.action, **ids)
                    return True
                if response.status_code in _GONE:
                    self._log.warning(
                        "ack_rejected",
                        status=response.status_code,
                        body=response.text[:_PREVIEW_BYTES],
                        **ids,
                    )
                    return True
                error = f"HTTP {response.status_code}: {response.text[:_PREVIEW_BYTES]}"
            if attempt >= self.ack_attempts:
                self._log.error("ack_failed", error=error, tries=attempt, processing=self.processing, **ids)
                return False
            delay = max(self.ack_backoff * 2 ** (attempt - 1), asked_to_wait or 0.0)
            self._log.warning("ack_retry", error=error, ack_try=attempt, retry_in=delay, **ids)
            await self._sleep(delay)

    async def _set_aside(self, raw: bytes | str, reason: str) -> None:
        """Move an unreadable item from the processing list to the poison list, in one transaction."""
        preview = raw[:_PREVIEW_BYTES]
        self._log.error("poison", reason=reason, size=len(raw), preview=repr(preview), poison=self.poison)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(self.poison, raw)
            pipe.lrem(self.processing, 1, raw)  # type: ignore[arg-type]  # bytes are fine; typed as str
            await pipe.execute()

    async def _forget(self, raw: bytes | str) -> None:
        """Drop the handled item from the processing list."""
        await self.redis.lrem(self.processing, 1, raw)  # type: ignore[arg-type]  # bytes are fine; typed as str
