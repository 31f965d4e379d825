"""Typed clients of the REST API: ``AsyncRemindersClient`` and ``RemindersClient`` (sync).

Both run the same ``client.calls`` (request building and answer parsing); each method here is only
"build the call, send it". Errors come as ``client.errors.ApiError`` subclasses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
import redis.asyncio as redis

from client import calls
from client.calls import Call, Changes, Duration, Id, NewReminder
from client.consumer import Consumer, Handler
from client.models import (
    AckAction,
    AckOutcome,
    AckResult,
    DstGap,
    DstRepeated,
    History,
    Preview,
    Reminder,
    ReminderPage,
    ReminderStatus,
    ReminderType,
)
from core.redis_keys import EVENT_QUEUE

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 10.0


def env_settings(base_url: str | None, api_key: str | None) -> tuple[str, str | None]:
    """The URL and key given, else ``REMINDERS_API_URL`` / ``REMINDERS_API_KEY``, else the local default."""
    url = base_url or os.environ.get("REMINDERS_API_URL") or DEFAULT_URL
    return url, api_key or os.environ.get("REMINDERS_API_KEY")


class _Credentials:
    """The auth headers both clients send, and whether they own (and so close) their httpx client."""

    def __init__(self, api_key: str | None, token: str | None, injected: bool) -> None:
        self.auth = calls.auth_headers(api_key, token)
        self.owns_http = not injected


class AsyncRemindersClient:
    """The REST API over an ``httpx.AsyncClient``; ``http`` or ``transport`` may be injected (tests).

    An injected ``http`` stays open on close (its owner closes it); credentials go with every request.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        token: str | None = None,
        http: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._credentials = _Credentials(api_key, token, injected=http is not None)
        self.http = http or httpx.AsyncClient(
            base_url=base_url, headers=self._credentials.auth, transport=transport, timeout=timeout
        )

    @classmethod
    def from_env(cls, base_url: str | None = None, api_key: str | None = None) -> AsyncRemindersClient:
        """A client for ``REMINDERS_API_URL`` with ``REMINDERS_API_KEY`` (arguments win)."""
        url, key = env_settings(base_url, api_key)
        return cls(url, api_key=key)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the httpx client, unless it was injected."""
        if self._credentials.owns_http:
            await self.http.aclose()

    async def _run(self, call: Call[T]) -> T:
        return call.finish(await self.http.send(call.build(self.http, self._credentials.auth)))

    def consumer(
        self,
        queue: redis.Redis,
        handler: Handler,
        consumer_id: str,
        *,
        queue_name: str = EVENT_QUEUE,
        block_timeout: float = 1.0,
        ack_attempts: int = 4,
        ack_backoff: float = 0.5,
    ) -> Consumer:
        """The reference ``Consumer`` on Redis ``queue``, acking over this client (its credentials too)."""
        return Consumer(
            queue,
            self.http,
            handler,
            consumer_id,
            queue=queue_name,
            block_timeout=block_timeout,
            headers=self._credentials.auth,
            ack_attempts=ack_attempts,
            ack_backoff=ack_backoff,
        )

    async def create(self, new: NewReminder, *, idempotency_key: str | None = None) -> Reminder:
        """Create a ``OneTime`` or ``Recurring`` reminder."""
        return await self._run(calls.create(new, idempotency_key))

    async def get(self, reminder_id: Id) -> Reminder:
        """One reminder (``NotFound`` when this credential may not see it)."""
        return await self._run(calls.get(reminder_id))

    async def list_user(
        self,
        user_id: int,
        *,
        status: ReminderStatus | None = None,
        type: ReminderType | None = None,
        page: int = 1,
        limit: int = 20,
    ) -> ReminderPage:
        """A user's reminders, oldest first, optionally by status and type."""
        return await self._run(calls.list_user(user_id, status=status, type=type, page=page, limit=limit))

    async def list_scheduled(self, *, page: int = 1, limit: int = 20) -> ReminderPage:
        """Pending and active reminders, soonest fire first."""
        return await self._run(calls.list_scheduled(page=page, limit=limit))

    async def preview(
        self,
        cron: str,
        *,
        timezone: str = "UTC",
        count: int = 5,
        dst_gap: DstGap = "shift",
        dst_repeated: DstRepeated = "first",
    ) -> Preview:
        """A schedule's next fires, nothing stored."""
        return await self._run(
            calls.preview(cron, timezone=timezone, count=count, dst_gap=dst_gap, dst_repeated=dst_repeated)
        )

    async def next_fires(self, reminder_id: Id, *, count: int = 5) -> Preview:
        """A reminder's next fires."""
        return await self._run(calls.next_fires(reminder_id, count=count))

    async def pause(self, reminder_id: Id) -> Reminder:
        """Pause: no fires until resumed."""
        return await self._run(calls.set_status(reminder_id, "paused"))

    async def resume(self, reminder_id: Id) -> Reminder:
        """Resume a paused reminder; its misfire policy decides about the fires missed meanwhile."""
        return await self._run(calls.set_status(reminder_id, "active"))

    async def update(self, reminder_id: Id, changes: Changes) -> Reminder:
        """Change schedule, payload, policies or end conditions; the next fire is recomputed."""
        return await self._run(calls.update(reminder_id, changes))

    async def cancel(self, reminder_id: Id) -> None:
        """Cancel: kept for audit, never fires again."""
        await self._run(calls.cancel(reminder_id))

    async def snooze(
        self, reminder_id: Id, *, for_: Duration | None = None, until: datetime | None = None
    ) -> Reminder:
        """Move the next occurrence by ``for_`` or to ``until``."""
        return await self._run(calls.snooze(reminder_id, for_=for_, until=until))

    async def skip(self, reminder_id: Id) -> Reminder:
        """Skip a recurring reminder's next occurrence."""
        return await self._run(calls.skip(reminder_id))

    async def ack(
        self,
        reminder_id: Id,
        event_id: Id,
        *,
        action: AckAction = "continue",
        result: AckOutcome = "ok",
        details: Mapping[str, Any] | None = None,
    ) -> AckResult:
        """Confirm an event; ``action="complete"`` ends a recurring chain."""
        return await self._run(
            calls.ack(reminder_id, event_id, action=action, result=result, details=details)
        )

    async def history(self, reminder_id: Id, *, page: int = 1, limit: int = 20) -> History:
        """The reminder's audit trail and deliveries, newest first."""
        return await self._run(calls.history(reminder_id, page=page, limit=limit))


class RemindersClient:
    """The REST API over a blocking ``httpx.Client``; see ``AsyncRemindersClient``."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        token: str | None = None,
        http: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._credentials = _Credentials(api_key, token, injected=http is not None)
        self.http = http or httpx.Client(
            base_url=base_url, headers=self._credentials.auth, transport=transport, timeout=timeout
        )

    @classmethod
    def from_env(cls, base_url: str | None = None, api_key: str | None = None) -> RemindersClient:
        """A client for ``REMINDERS_API_URL`` with ``REMINDERS_API_KEY`` (arguments win)."""
        url, key = env_settings(base_url, api_key)
        return cls(url, api_key=key)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the httpx client, unless it was injected."""
        if self._credentials.owns_http:
            self.http.close()

    def _run(self, call: Call[T]) -> T:
        return call.finish(self.http.send(call.build(self.http, self._credentials.auth)))

    def create(self, new: NewReminder, *, idempotency_key: str | None = None) -> Reminder:
        """Create a ``OneTime`` or ``Recurring`` reminder."""
        return self._run(calls.create(new, idempotency_key))

    def get(self, reminder_id: Id) -> Reminder:
        """One reminder (``NotFound`` when this credential may not see it)."""
        return self._run(calls.get(reminder_id))

    def list_user(
        self,
        user_id: int,
        *,
        status: ReminderStatus | None = None,
        type: ReminderType | None = None,
        page: int = 1,
        limit: int = 20,
    ) -> ReminderPage:
        """A user's reminders, oldest first, optionally by status and type."""
        return self._run(calls.list_user(user_id, status=status, type=type, page=page, limit=limit))

    def list_scheduled(self, *, page: int = 1, limit: int = 20) -> ReminderPage:
        """Pending and active reminders, soonest fire first."""
        return self._run(calls.list_scheduled(page=page, limit=limit))

    def preview(
        self,
        cron: str,
        *,
        timezone: str = "UTC",
        count: int = 5,
        dst_gap: DstGap = "shift",
        dst_repeated: DstRepeated = "first",
    ) -> Preview:
        """A schedule's next fires, nothing stored."""
        return self._run(
            calls.preview(cron, timezone=timezone, count=count, dst_gap=dst_gap, dst_repeated=dst_repeated)
        )

    def next_fires(self, reminder_id: Id, *, count: int = 5) -> Preview:
        """A reminder's next fires."""
        return self._run(calls.next_fires(reminder_id, count=count))

    def pause(self, reminder_id: Id) -> Reminder:
        """Pause: no fires until resumed."""
        return self._run(calls.set_status(reminder_id, "paused"))

    def resume(self, reminder_id: Id) -> Reminder:
        """Resume a paused reminder; its misfire policy decides about the fires missed meanwhile."""
        return self._run(calls.set_status(reminder_id, "active"))

    def update(self, reminder_id: Id, changes: Changes) -> Reminder:
        """Change schedule, payload, policies or end conditions; the next fire is recomputed."""
        return self._run(calls.update(reminder_id, changes))

    def cancel(self, reminder_id: Id) -> None:
        """Cancel: kept for audit, never fires again."""
        self._run(calls.cancel(reminder_id))

    def snooze(
        self, reminder_id: Id, *, for_: Duration | None = None, until: datetime | None = None
    ) -> Reminder:
        """Move the next occurrence by ``for_`` or to ``until``."""
        return self._run(calls.snooze(reminder_id, for_=for_, until=until))

    def skip(self, reminder_id: Id) -> Reminder:
        """Skip a recurring reminder's next occurrence."""
        return self._run(calls.skip(reminder_id))

    def ack(
        self,
        reminder_id: Id,
        event_id: Id,
        *,
        action: AckAction = "continue",
        result: AckOutcome = "ok",
        details: Mapping[str, Any] | None = None,
    ) -> AckResult:
        """Confirm an event; ``action="complete"`` ends a recurring chain."""
        return self._run(calls.ack(reminder_id, event_id, action=action, result=result, details=details))

    def history(self, reminder_id: Id, *, page: int = 1, limit: int = 20) -> History:
        """The reminder's audit trail and deliveries, newest first."""
        return self._run(calls.history(reminder_id, page=page, limit=limit))
