"""The CLI as a newcomer meets it (issue 17): the running stack's key, an unmigrated database,
`migrate` to an older or unknown revision, an empty `keys list`, and `--help` at 80 columns."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import orjson
import pytest
import redis.asyncio as redis
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from cli.main import app
from cli.running import RUNNING_FILE, RunningStack
from core import migrate
from core.crypto import PayloadCipher
from core.db import Pool
from core.embedded.postgres import with_database
from core.readiness import migration_heads
from core.redis_keys import EVENT_QUEUE
from core.settings import Settings
from poller.worker import Poller
from tests.conftest import ServiceUrls
from tests.factories import TEST_PAYLOAD_KEY, insert_reminder
from tests.integration.test_cli import _env, _run_cli

(HEAD,) = migration_heads()
HELP_WIDTH = 80


def _stack_env(settings: Settings, data_dir: Path, *, payload_keys: str = TEST_PAYLOAD_KEY) -> dict[str, str]:
    """No REMINDERS_* at all but the data dir, where a `reminders up` says where it is (as cli/up.py
    writes it), its payload key in its own file."""
    data_dir.mkdir(parents=True, exist_ok=True)
    key_file = data_dir / "payload_key"
    key_file.write_text(payload_keys + "\n")
    running = RunningStack(
        database_url=settings.require_database_url(),
        redis_url=settings.require_redis_url(),
        payload_key_file=key_file,
    )
    (data_dir / RUNNING_FILE).write_text(running.to_json())
    return _env(REMINDERS_DATA_DIR=str(data_dir))


async def test_tail_payload_takes_the_key_of_the_running_up(
    settings: Settings, pool: Pool, redis_client: redis.Redis, tmp_path: Path
) -> None:
    await insert_reminder(pool, next_run_at=datetime.now(UTC) - timedelta(seconds=1), payload='{"n":7}')
    assert await Poller(settings, pool, redis_client).poll() == 1
    pushed = await redis_client.lpop(EVENT_QUEUE)
    assert isinstance(pushed, bytes)

    env = _stack_env(settings, tmp_path / "data")
    code, stdout, stderr = await _run_cli(env, "tail", "--payload", "--json", "--once", "--since", "5m")

    assert code == 0, stderr
    (shown,) = stdout.splitlines()
    assert orjson.loads(shown) == orjson.loads(pushed)  # decrypted, as pushed
    assert orjson.loads(shown)["payload"]["payload"] == {"n": 7}


async def test_rotate_payload_keys_takes_the_database_and_keys_of_the_running_up(
    settings: Settings, pool: Pool, tmp_path: Path
) -> None:
    for _ in range(2):
        await insert_reminder(pool, next_run_at=datetime.now(UTC) + timedelta(hours=1))
    new_key = Fernet.generate_key().decode()
    # What the README says to do with `make run`: the new key first in .data/payload_key.
    env = _stack_env(settings, tmp_path / "data", payload_keys=f"{new_key},{TEST_PAYLOAD_KEY}")

    code, stdout, stderr = await _run_cli(env, "rotate-payload-keys")

    assert code == 0, stderr
    new_key_id = PayloadCipher([new_key]).key_id
    assert stdout.strip() == f"re-encrypted 2 payloads; every payload is under key {new_key_id}"
    stored = {row[0] for row in await pool.fetch("SELECT DISTINCT payload_key_id FROM reminders")}
    assert stored == {new_key_id}


async def test_without_the_stack_the_payload_key_is_asked_for(settings: Settings, tmp_path: Path) -> None:
    env = _env(settings)
    del env["REMINDERS_PAYLOAD_KEYS"]
    env["REMINDERS_DATA_DIR"] = str(tmp_path)  # no `reminders up` there
    code, stdout, stderr = await _run_cli(env, "tail", "--payload", "--once")
    assert (code, stdout) == (1, "")
    assert "REMINDERS_PAYLOAD_KEYS is not set" in stderr and "Traceback" not in stderr


@pytest.fixture
async def bare_database(service_urls: ServiceUrls) -> AsyncIterator[str]:
    """A database nothing has migrated."""
    name = f"reminders_bare_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(service_urls.database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(service_urls.database_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _bare_env(database_url: str, redis_url: str) -> dict[str, str]:
    return _env(Settings(database_url=database_url, redis_url=redis_url))


async def _revision(database_url: str) -> str | None:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval("SELECT version_num FROM alembic_version")  # type: ignore[no-any-return]
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await conn.close()


@pytest.mark.parametrize("command", [["status"], ["keys", "list"], ["tail", "--once"], ["prune"]])
async def test_a_command_on_an_unmigrated_database_says_run_migrate(
    bare_database: str, redis_url: str, command: list[str]
) -> None:
    code, stdout, stderr = await _run_cli(_bare_env(bare_database, redis_url), *command)
    assert (code, stdout) == (1, "")
    assert stderr.strip() == "error: the database is not migrated: run `reminders migrate`"


async def migrate_to(database_url: str, revision: str) -> None:
    await asyncio.to_thread(migrate.upgrade, database_url, revision)


async def test_a_command_on_an_older_schema_names_both_revisions(bare_database: str, redis_url: str) -> None:
    await migrate_to(bare_database, "0003")  # before the api_keys table
    code, _, stderr = await _run_cli(_bare_env(bare_database, redis_url), "keys", "list")
    assert code == 1
    assert stderr.strip() == (
        "error: the database is not migrated: run `reminders migrate` "
        f"(the database is at 0003, this release needs {HEAD})"
    )


async def test_migrate_says_what_it_did_and_refuses_to_downgrade_silently(
    bare_database: str, redis_url: str
) -> None:
    env = _bare_env(bare_database, redis_url)

    code, _, stderr = await _run_cli(env, "migrate", "0003")
    assert code == 0, stderr
    assert stderr.strip() == "database upgraded from base (no schema) to 0003"

    code, _, stderr = await _run_cli(env, "migrate")
    assert code == 0, stderr
    assert stderr.strip() == f"database upgraded from 0003 to {HEAD} (head)"

    code, _, stderr = await _run_cli(env, "migrate", "head")
    assert (code, stderr.strip()) == (0, f"database already at {HEAD} (head); nothing to do")

    # An older revision without --downgrade: nothing done, and it says so (not "database at 0001").
    code, _, stderr = await _run_cli(env, "migrate", "0001")
    assert code == 1
    assert f"the database is at {HEAD} (head), newer than 0001" in stderr and "nothing done" in stderr
    assert "reminders migrate 0001 --downgrade" in stderr
    assert await _revision(bare_database) == HEAD

    # --downgrade asks first; no answer (stdin closed) is no.
    code, _, stderr = await _run_cli(env, "migrate", "0001", "--downgrade")
    assert code == 1 and "Aborted" in stderr, stderr
    assert await _revision(bare_database) == HEAD

    code, _, stderr = await _run_cli(env, "migrate", "0002", "--downgrade", "--yes")
    assert code == 0, stderr
    assert stderr.strip() == f"database downgraded from {HEAD} (head) to 0002"
    assert await _revision(bare_database) == "0002"

    code, _, stderr = await _run_cli(env, "migrate", "0003", "--downgrade", "--yes")
    assert code == 1 and "0003 is not older than the database's 0002: nothing done" in stderr
    assert await _revision(bare_database) == "0002"


@pytest.mark.parametrize("revision", ["0042", "not-a-revision", "heads-up"])
async def test_migrate_to_an_unknown_revision_is_one_line_and_exit_2(
    bare_database: str, redis_url: str, revision: str
) -> None:
    code, stdout, stderr = await _run_cli(_bare_env(bare_database, redis_url), "migrate", revision)
    assert (code, stdout) == (2, "")
    (line,) = stderr.splitlines()
    assert line.startswith("error: ") and repr(revision) in line and "0001" in line and HEAD in line
    assert await _revision(bare_database) is None  # nothing was done


async def test_keys_list_has_a_header_and_says_when_there_is_no_key(settings: Settings) -> None:
    code, stdout, stderr = await _run_cli(_env(settings), "keys", "list")
    assert code == 0, stderr
    assert stdout.strip() == "no API keys (create one with `reminders keys create --name NAME`)"

    code, _, stderr = await _run_cli(_env(settings), "keys", "create", "--name", "weather-bot")
    assert code == 0, stderr
    code, stdout, stderr = await _run_cli(_env(settings), "keys", "list")
    assert code == 0, stderr
    header, row = stdout.splitlines()
    assert header.split() == ["ID", "NAME", "PREFIX", "SCOPES", "ASSISTANTS", "CREATED", "REVOKED"]
    assert "weather-bot" in row and "reminders:read reminders:write" in row and row.endswith("-")
    # Columns line up: each value starts under its header.
    assert row.index("weather-bot") == header.index("NAME")
    assert row.index("all") == header.index("ASSISTANTS")


def _commands() -> list[list[str]]:
    """Every command line that has a --help: the app, each command, each group and its commands."""
    result: list[list[str]] = [[]]
    for command in app.registered_commands:
        result.append([str(command.name or getattr(command.callback, "__name__", ""))])
    for group in app.registered_groups:
        assert group.name and group.typer_instance
        result.append([group.name])
        for sub in group.typer_instance.registered_commands:
            result.append([group.name, str(sub.name or getattr(sub.callback, "__name__", ""))])
    return result


@pytest.mark.parametrize("command", _commands(), ids=lambda c: " ".join(c) or "reminders")
def test_help_reads_well_at_80_columns(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": str(HELP_WIDTH)})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(len(line) <= HELP_WIDTH for line in lines)
    assert "…" not in result.output  # nothing cut
    assert "<bool>" not in result.output and "range>" not in result.output  # flags are flags
    assert "[default: 0]" not in result.output  # "--since" says "now" itself
    # Paragraphs are wrapped to the width, not broken where the source's lines end: a line followed
    # by more of the same paragraph leaves no room for that paragraph's next word.
    text = [line for line in lines if not line.lstrip().startswith(("╭", "│", "╰"))]
    for line, following in itertools.pairwise(text):
        if line.strip() and following.strip() and not following.strip().startswith("Usage"):
            assert len(line.rstrip()) + 1 + len(following.split()[0]) > HELP_WIDTH - 2, (line, following)
