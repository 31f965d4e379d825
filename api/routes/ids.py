"""The ``{reminder_id:reminder_id}`` path convertor: any segment but the collection's own words.

``/reminders/scheduled`` and ``/reminders/preview`` are GET-only paths beside
``/reminders/{reminder_id}``; with a plain ``{reminder_id}`` a PATCH or DELETE of them matched the
id route and answered 422 (not a UUID) where 405 is right. The id itself stays a string here, so a
malformed one still gets FastAPI's 422 naming ``reminder_id``.
"""

from __future__ import annotations

from starlette.convertors import StringConvertor, register_url_convertor

# Literal paths under /reminders/ that are not reminder ids (their routes are declared first).
RESERVED = ("scheduled", "preview", "user")


class ReminderIdConvertor(StringConvertor):
    """One path segment that is not one of ``RESERVED``."""

    regex = "(?!(?:" + "|".join(RESERVED) + ")(?:/|$))[^/]+"


register_url_convertor("reminder_id", ReminderIdConvertor())
