"""The service's own exceptions; the API turns them into HTTP answers in one place.

ReminderError
├── NotFound            the reminder or event does not exist for this caller
├── Conflict            the change is impossible in the current state
│   └── UnreadableRow   a stored row holds a value this release cannot decode
├── Forbidden           the credential does not cover this assistant
├── ServiceUnavailable  Postgres or Redis cannot be reached right now
├── RetryLater          the answer exists in a moment (an event not yet recorded)
├── InvalidField        a field is well-formed but impossible (e.g. a window with no fire)
└── PayloadCryptoError  payload keys missing or wrong
    ├── PayloadKeyError         REMINDERS_PAYLOAD_KEYS unset or malformed
    └── PayloadDecryptionError  a stored payload matches no key of the ring

InvalidSchedule (a ValueError, so a pydantic validator turns it into a 422 on its field)
└── UnknownZone         not one of the IANA zone names the service accepts
"""

from __future__ import annotations


class ReminderError(Exception):
    """Base of every error the service raises on purpose."""


class NotFound(ReminderError):
    """The thing asked for does not exist, or the caller may not see it."""


class Conflict(ReminderError):
    """The request is valid but impossible in the current state (e.g. resume a cancelled one)."""


class UnreadableRow(Conflict):
    """A stored reminder holds a value no Python type can hold (a time outside years 1-9999, written
    with SQL): an operator must repair or cancel it."""


# What asyncpg raises decoding such a value (datetime's years stop at 9999), and what to say.
UNREADABLE = (OverflowError, ValueError)
UNREADABLE_DETAIL = (
    "the reminder holds a time this release cannot read (outside years 1-9999, written outside the "
    "API); an operator must repair the row, or DELETE cancels it"
)


class Forbidden(ReminderError):
    """The credential is valid but does not cover the assistant it tries to act for."""


class ServiceUnavailable(ReminderError):
    """A backing service (Postgres, Redis) is down or saturated; retry later."""


class RetryLater(ReminderError):
    """The request will succeed shortly, without anything else changing; answered as a 503."""

    def __init__(self, message: str, retry_after_seconds: int = 1) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class InvalidField(ReminderError):
    """A request field that passed validation but cannot be honoured; answered as a 422."""

    def __init__(self, field: str, message: str, location: str = "body") -> None:
        super().__init__(message)
        self.field = field
        self.location = location


class PayloadCryptoError(ReminderError):
    """Payload encryption cannot work: a key is missing, malformed, or does not match."""


class PayloadKeyError(PayloadCryptoError):
    """REMINDERS_PAYLOAD_KEYS is unset or holds a malformed key."""


class PayloadDecryptionError(PayloadCryptoError):
    """A stored payload cannot be decrypted with any key of the ring (or was tampered with)."""


class InvalidSchedule(ReminderError, ValueError):
    """A cron expression or time zone that cannot be used; the message says why in plain words.

    Also a ValueError: raised inside a pydantic validator, it becomes that field's 422."""


class UnknownZone(InvalidSchedule):
    """A time zone name that is not one of the IANA names the service accepts (core/zones.py)."""
