"""loadtests/apscheduler_compare.py: its option parsing, driver choice and report, without servers."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from loadtests import apscheduler_compare as compare
from loadtests.burst import Drain


def test_defaults_are_the_documented_ones() -> None:
    options = compare.parse_args([])
    assert (options.count, options.workers, options.trigger) == (20_000, 20, "cron")
    assert options.misfire_grace_time is None
    assert compare.parse_args(["--misfire-grace-time", "1"]).misfire_grace_time == 1.0


@pytest.mark.parametrize("argv", [["--count", "0"], ["--misfire-grace-time", "soon"], ["--lead", "-1"]])
def test_bad_options_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        compare.parse_args(argv)


def test_sqlalchemy_url_swaps_in_the_first_installed_sync_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    installed = {"pg8000"}
    # Pretend only pg8000 is installed, whatever this machine has.
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if name in installed else None)
    url = compare.sqlalchemy_url("postgresql://postgres@127.0.0.1:5432/bench_1")
    assert url == "postgresql+pg8000://postgres@127.0.0.1:5432/bench_1"
    installed.clear()
    with pytest.raises(compare.CompareError, match="psycopg"):
        compare.sqlalchemy_url("postgresql://postgres@127.0.0.1:5432/bench_1")


def test_due_moment_is_a_whole_second() -> None:
    assert compare.due_moment(0).microsecond == 0
    ahead = compare.due_moment(5)
    assert ahead.microsecond == 0 and ahead > datetime.now(UTC)


def test_scheduler_is_configured_as_reported(tmp_path: Path) -> None:
    options = compare.parse_args(["--workers", "7"])
    scheduler: Any = compare.make_scheduler(f"sqlite:///{tmp_path / 'jobs.sqlite'}", options)
    assert scheduler._job_defaults == {"coalesce": False, "max_instances": 1, "misfire_grace_time": None}
    assert scheduler._executors["default"]._pool._max_workers == 7


def test_report_counts_duplicates_and_ratio() -> None:
    options = compare.parse_args(["--count", "4", "--skip-reminders"])
    fired = compare.Fired(Drain(2.0, 0.5, 5, timed_out=False), 1.0, 0.0, [0, 1, 2, 3, 3], 0, 0)
    aps = compare.apscheduler_report(fired, options)
    assert (aps["fired"], aps["duplicates"], aps["missing"], aps["per_second"]) == (4, 1, 0, 2.0)
    assert compare.ratio(20.0, aps["per_second"]) == 10.0
    assert compare.ratio(None, aps["per_second"]) is None
    result = {"apscheduler": aps, "reminders": None}
    assert not compare.succeeded(result)  # a duplicate with one process is a failure
    assert any("insert" in note for note in compare.notes(options, aps))
