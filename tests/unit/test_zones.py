"""The time zone names the service accepts (core/zones.py): pure, no I/O beyond the zone files."""

from __future__ import annotations

import os
import zoneinfo
from importlib import resources
from pathlib import Path

import pytest

from core import zones
from core.exceptions import InvalidSchedule, UnknownZone
from core.zones import NOT_PLACES, ZoneDataUnavailable, zone, zone_names


def _folders() -> set[str]:
    """Every folder of every zoneinfo tree this machine reads, as a name relative to its root."""
    roots = [Path(p) for p in zoneinfo.TZPATH if os.path.isdir(p)]
    roots.append(Path(str(resources.files("tzdata").joinpath("zoneinfo"))))
    return {str(d.relative_to(root)) for root in roots for d in root.rglob("*") if d.is_dir()}


def test_the_names_are_the_iana_list_without_what_is_not_a_place() -> None:
    listed = zoneinfo.available_timezones()
    assert zone_names() == {n for n in listed if n not in NOT_PLACES}
    assert not NOT_PLACES & zone_names()
    assert {"UTC", "Asia/Kathmandu", "America/Argentina/Buenos_Aires", "US/Pacific"} <= zone_names()
    assert zone_names() is zone_names()  # computed once


def test_every_zoneinfo_folder_is_an_unknown_zone_never_an_os_error() -> None:
    folders = _folders()
    assert {"Asia", "Pacific", "America/Indiana"} <= folders
    for folder in sorted(folders):
        with pytest.raises(UnknownZone, match="unknown time zone"):
            zone(folder)


@pytest.mark.parametrize("name", sorted(NOT_PLACES))
def test_names_that_are_not_places_are_refused(name: str) -> None:
    with pytest.raises(UnknownZone, match="not a place"):
        zone(name)


@pytest.mark.parametrize("name", ["right/Asia/Tokyo", "posix/Australia/Perth", "Asia/Tokyo/", "./UTC"])
def test_copies_and_unnormalised_paths_are_refused(name: str) -> None:
    with pytest.raises(UnknownZone):
        zone(name)


@pytest.mark.parametrize(
    ("written", "spelled"),
    [("asia/tokyo", "Asia/Tokyo"), ("utc", "UTC"), ("AMERICA/NEW_YORK", "America/New_York")],
)
def test_another_case_is_refused_with_the_iana_spelling(written: str, spelled: str) -> None:
    with pytest.raises(UnknownZone, match=f"IANA spells it '{spelled}'"):
        zone(written)


def test_unknown_zone_is_an_invalid_schedule_and_a_value_error() -> None:
    # ValueError: a pydantic validator turns it into a 422 on its field.
    assert issubclass(UnknownZone, InvalidSchedule) and issubclass(UnknownZone, ValueError)


def test_a_long_hostile_name_is_cut_in_the_message() -> None:
    with pytest.raises(UnknownZone) as info:
        zone("Z" * 5000)
    assert len(str(info.value)) < 200


def test_a_listed_zone_whose_data_cannot_be_read_is_no_os_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """An OSError would reach the API's "database unavailable" 503; this is the machine's fault."""

    def unreadable(name: str) -> zoneinfo.ZoneInfo:
        raise PermissionError(13, "Permission denied", name)

    monkeypatch.setattr(zones, "ZoneInfo", unreadable)
    zone.cache_clear()
    try:
        with pytest.raises(ZoneDataUnavailable) as info:
            zone("Indian/Maldives")
        assert not isinstance(info.value, OSError)
    finally:
        zone.cache_clear()
