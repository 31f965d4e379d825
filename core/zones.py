"""The time zone names the service accepts, and their ZoneInfo.

Exactly the IANA names ``zoneinfo.available_timezones()`` lists (the tzdata package, plus the
system's zoneinfo directories), spelled as IANA spells them, except those that are not places:

- ``Factory``: tzdata's placeholder for a machine whose zone was never set (its abbreviation is
  ``-00``, "local time is unknown");
- ``localtime``: a link to whatever zone this machine happens to run in, not a zone of the user;
- ``posixrules``: the rules file POSIX ``TZ`` strings borrow (the standard library drops it too).

Anything else (a folder such as ``Europe``, ``posix/...`` and ``right/...`` copies, another case)
is an ``UnknownZone``, before any file is opened: ``ZoneInfo("Europe")`` raises
``IsADirectoryError``, an ``OSError`` the API would have answered as "database unavailable".
"""

from __future__ import annotations

from functools import cache, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from core.exceptions import UnknownZone

NOT_PLACES = frozenset({"Factory", "localtime", "posixrules"})
_SHOWN_CHARS = 64  # of a refused name in the message: the name is the caller's, maybe hostile


class ZoneDataUnavailable(RuntimeError):
    """A listed zone whose data could not be read: a fault of this machine, not of the request."""


@cache
def zone_names() -> frozenset[str]:
    """The accepted names; computed once (a few milliseconds: it walks the zoneinfo folders)."""
    return frozenset(
        name
        for name in available_timezones()
        if name not in NOT_PLACES and not name.startswith(("posix/", "right/"))
    )


@cache
def _by_folded_case() -> dict[str, str]:
    return {name.casefold(): name for name in zone_names()}


def _refusal(name: str) -> UnknownZone:
    shown = name[:_SHOWN_CHARS] + ("..." if len(name) > _SHOWN_CHARS else "")
    if name in NOT_PLACES:
        return UnknownZone(f"time zone {shown!r} is not a place; use an IANA name like 'Europe/Berlin'")
    spelled = _by_folded_case().get(name.casefold())
    if spelled is not None:
        return UnknownZone(f"unknown time zone {shown!r}; IANA spells it {spelled!r}")
    return UnknownZone(f"unknown time zone {shown!r}; use an IANA name like 'Europe/Berlin'")


@lru_cache(maxsize=4096)
def zone(name: str) -> ZoneInfo:
    """The ZoneInfo of an accepted name; ``UnknownZone`` for any other name."""
    if name not in zone_names():
        raise _refusal(name)
    try:
        return ZoneInfo(name)
    except (
        OSError,
        ValueError,
        ZoneInfoNotFoundError,
    ) as exc:  # listed, yet unreadable: never an OSError to the caller
        raise ZoneDataUnavailable(f"the data of time zone {name!r} could not be read") from exc
