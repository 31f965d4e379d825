"""The client side for assistants: the typed REST clients and the reference event ``Consumer``.

``AsyncRemindersClient``/``RemindersClient`` call the API; ``AsyncRemindersClient.consumer(...)`` builds
a ``Consumer`` that takes events from Redis and acks them over the same connection.
"""

from client.api import AsyncRemindersClient, RemindersClient
from client.calls import UNSET, Changes, NewReminder, OneTime, Recurring, auth_headers
from client.consumer import Consumer, Handler, HandlerResult
from client.errors import (
    ApiError,
    BadRequest,
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)
from client.models import (
    AckResult,
    AuditEntry,
    DeliveryEntry,
    DstPolicy,
    History,
    Preview,
    PreviewFire,
    Reminder,
    ReminderPage,
)

__all__ = [
    "UNSET",
    "AckResult",
    "ApiError",
    "AsyncRemindersClient",
    "AuditEntry",
    "BadRequest",
    "Changes",
    "Conflict",
    "Consumer",
    "DeliveryEntry",
    "DstPolicy",
    "FieldError",
    "Forbidden",
    "Handler",
    "HandlerResult",
    "History",
    "NewReminder",
    "NotFound",
    "OneTime",
    "PayloadTooLarge",
    "Preview",
    "PreviewFire",
    "RateLimited",
    "Recurring",
    "Reminder",
    "ReminderPage",
    "RemindersClient",
    "ServerError",
    "Unauthorized",
    "Unavailable",
    "ValidationFailed",
    "auth_headers",
]
