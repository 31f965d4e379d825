"""`make run` keeps a payload key under the data dir when REMINDERS_PAYLOAD_KEYS is unset."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from cli.services import PAYLOAD_KEY_FILE, StartupError, payload_keys
from core.crypto import PayloadCipher
from core.settings import Settings


def test_a_key_is_made_once_with_mode_0600_and_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", payload_keys=None)
    first = payload_keys(settings)
    path = tmp_path / "data" / PAYLOAD_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == first
    assert payload_keys(settings) == first
    PayloadCipher([first])  # a valid Fernet key


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    (tmp_path / PAYLOAD_KEY_FILE).write_text(Fernet.generate_key().decode())
    mine = f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}"
    assert payload_keys(Settings(data_dir=tmp_path, payload_keys=mine)) == mine


def test_a_malformed_key_stops_the_start_without_showing_it(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="REMINDERS_PAYLOAD_KEYS") as caught:
        payload_keys(Settings(data_dir=tmp_path, payload_keys="oops-secret"))
    assert "oops-secret" not in str(caught.value)
