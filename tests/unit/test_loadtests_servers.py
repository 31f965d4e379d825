"""loadtests/servers.py with given URLs: they pass through and nothing is started."""

from __future__ import annotations

from pathlib import Path

from loadtests.servers import postgres, services

DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/9"


def test_services_yields_the_given_urls_and_starts_nothing(tmp_path: Path) -> None:
    logged: list[str] = []
    with services(DATABASE_URL, REDIS_URL, tmp_path, logged.append) as urls:
        assert urls == (DATABASE_URL, REDIS_URL)
    assert logged == []
    assert list(tmp_path.iterdir()) == []


def test_postgres_yields_the_given_url_and_starts_nothing(tmp_path: Path) -> None:
    logged: list[str] = []
    with postgres(DATABASE_URL, tmp_path, logged.append) as url:
        assert url == DATABASE_URL
    assert logged == []
    assert list(tmp_path.iterdir()) == []
