"""Payloads at rest: stored only as ciphertext, read back decrypted, legacy rows, key rotation."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import orjson
import pytest
import redis.asyncio as redis
from cryptography.fernet import Fernet

from api.app import create_app
from cli.rotate import rotate_payloads
from core.crypto import PayloadCipher
from core.db import Pool
from core.exceptions import PayloadCryptoError, PayloadKeyError
from core.redis_keys import EVENT_QUEUE
from core.settings import Settings
from poller.worker import Poller
from tests.conftest import PROJECT_ROOT, TEST_API_KEY
from tests.factories import ASSISTANT_ID, insert_reminder, payload_cipher

PAYLOAD = '{"text":"Meeting","priority":"normal"}'  # as the API normalizes it


@pytest.fixture
async def client(settings: Settings, pool: Pool) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    app.state.pool = pool  # the lifespan is not run by the ASGI transport; share the test pool
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api", headers={"X-API-Key": TEST_API_KEY}
    ) as c:
        yield c


async def _stored(pool: Pool) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT id, payload, payload_ciphertext, payload_key_id FROM reminders ORDER BY id"
    )


async def _insert_legacy(pool: Pool, payload: str, next_run_at: datetime) -> None:
    """A row as written before encryption: plaintext payload, no ciphertext, no key id."""
    await pool.execute(
        """
        INSERT INTO reminders (id, user_id, assistant_id, created_by_assistant_id, type, trigger_at,
                               timezone, payload, status, next_run_at)
        VALUES (gen_random_uuid(), 7, $1, $1, 'one_time', $2, 'UTC', $3, 'pending', $2)
        """,
        ASSISTANT_ID,
        next_run_at,
        payload,
    )


async def test_the_api_stores_only_ciphertext_and_answers_plaintext(
    client: httpx.AsyncClient, pool: Pool
) -> None:
    trigger_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    created = await client.post(
        "/reminders/",
        json={
            "user_id": 123,
            "assistant_id": str(ASSISTANT_ID),
            "type": "one_time",
            "trigger_at": trigger_at,
            "payload": PAYLOAD,
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["payload"] == PAYLOAD
    assert "payload_ciphertext" not in body and "payload_key_id" not in body
    [row] = await _stored(pool)
    assert row["payload"] is None
    assert b"Meeting" not in row["payload_ciphertext"]
    assert row["payload_key_id"] == payload_cipher().key_id
    assert payload_cipher().decrypt(row["payload_ciphertext"]) == PAYLOAD
    assert (await client.get(f"/reminders/{body['id']}")).json()["payload"] == PAYLOAD
    assert (await client.get("/reminders/user/123")).json()["items"][0]["payload"] == PAYLOAD
    assert (await client.get("/reminders/scheduled")).json()["items"][0]["payload"] == PAYLOAD
    paused = await client.patch(f"/reminders/{body['id']}", json={"status": "paused"})
    assert paused.json()["payload"] == PAYLOAD


async def test_a_row_needs_ciphertext_or_legacy_plaintext(pool: Pool) -> None:
    with pytest.raises(asyncpg.CheckViolationError, match="reminders_payload_check"):
        await pool.execute(
            """
            INSERT INTO reminders (id, user_id, assistant_id, created_by_assistant_id, type,
                                   trigger_at, timezone, status, next_run_at)
            VALUES (gen_random_uuid(), 1, $1, $1, 'one_time', now(), 'UTC', 'pending', now())
            """,
            ASSISTANT_ID,
        )


async def test_legacy_plaintext_rows_are_read_and_fired(
    client: httpx.AsyncClient, pool: Pool, settings: Settings, redis_client: redis.Redis
) -> None:
    await _insert_legacy(pool, '{"legacy": true}', datetime.now(UTC) - timedelta(seconds=1))
    listed = (await client.get("/reminders/user/7")).json()["items"]
    assert [item["payload"] for item in listed] == ['{"legacy": true}']
    assert await Poller(settings, pool, redis_client).poll() == 1
    [raw] = await redis_client.lrange(EVENT_QUEUE, 0, -1)
    assert orjson.loads(raw)["payload"]["payload"] == {"legacy": True}


async def test_the_poller_decrypts_what_it_pushes(
    pool: Pool, settings: Settings, redis_client: redis.Redis
) -> None:
    await insert_reminder(pool, next_run_at=datetime.now(UTC) - timedelta(seconds=1), payload=PAYLOAD)
    assert await Poller(settings, pool, redis_client).poll() == 1
    [raw] = await redis_client.lrange(EVENT_QUEUE, 0, -1)
    assert orjson.loads(raw)["payload"]["payload"] == orjson.loads(PAYLOAD)


def test_the_api_does_not_start_without_payload_keys(settings: Settings) -> None:
    with pytest.raises(PayloadKeyError, match="REMINDERS_PAYLOAD_KEYS"):
        create_app(settings.model_copy(update={"payload_keys": None}))


async def test_a_poller_does_not_start_without_payload_keys(settings: Settings) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMINDERS_")}
    env.update(
        REMINDERS_DATABASE_URL=settings.require_database_url(),
        REMINDERS_REDIS_URL=settings.require_redis_url(),
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "poller",
        cwd=PROJECT_ROOT, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 1
    assert b"REMINDERS_PAYLOAD_KEYS is not set" in stderr
    assert b"Traceback" not in stderr


# --- key rotation -------------------------------------------------------------------------------


async def _run_cli(settings: Settings, keys: str, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMINDERS_")}
    env.update(REMINDERS_DATABASE_URL=settings.require_database_url(), REMINDERS_PAYLOAD_KEYS=keys)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from cli.main import app; app()", *args,
        cwd=PROJECT_ROOT, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def _seed_under(pool: Pool, cipher: PayloadCipher, count: int) -> dict[str, str]:
    """``count`` rows encrypted with ``cipher`` and one legacy plaintext row; id -> payload."""
    later = datetime.now(UTC) + timedelta(hours=1)
    for n in range(count):
        await insert_reminder(pool, next_run_at=later, payload=f'{{"n": {n}}}', cipher=cipher)
    await _insert_legacy(pool, '{"legacy": true}', later)
    rows = await _stored(pool)
    return {str(r["id"]): cipher.read(r["payload_ciphertext"], r["payload"]) for r in rows}


async def test_rotate_payload_keys_moves_every_row_to_the_new_key(settings: Settings, pool: Pool) -> None:
    key_a, key_b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = await _seed_under(pool, PayloadCipher([key_a]), 5)

    code, stdout, stderr = await _run_cli(
        settings, f"{key_b},{key_a}", "rotate-payload-keys", "--batch-size", "2"
    )
    assert code == 0, stderr
    assert "re-encrypted 6 payloads" in stdout
    assert key_a not in stdout + stderr and key_b not in stdout + stderr

    only_b = PayloadCipher([key_b])
    rows = await _stored(pool)
    assert {r["payload_key_id"] for r in rows} == {only_b.key_id}
    assert all(r["payload"] is None for r in rows)
    assert {str(r["id"]): only_b.decrypt(r["payload_ciphertext"]) for r in rows} == before

    code, stdout, _ = await _run_cli(settings, f"{key_b},{key_a}", "rotate-payload-keys")
    assert code == 0 and "re-encrypted 0 payloads" in stdout


async def test_an_interrupted_rotation_resumes_where_it_stopped(pool: Pool) -> None:
    key_a, key_b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = await _seed_under(pool, PayloadCipher([key_a]), 6)
    ring = PayloadCipher([key_b, key_a])

    def stop_after_first_batch(_rows: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await rotate_payloads(pool, ring, batch_size=3, on_batch=stop_after_first_batch)
    rows = await _stored(pool)
    assert sum(r["payload_key_id"] == ring.key_id for r in rows) == 3  # the first batch committed

    done: list[int] = []
    result = await rotate_payloads(pool, ring, batch_size=3, on_batch=done.append)
    assert (result.rotated, result.remaining, done) == (4, 0, [3, 1])
    only_b = PayloadCipher([key_b])
    assert {str(r["id"]): only_b.decrypt(r["payload_ciphertext"]) for r in await _stored(pool)} == before


async def test_rotation_refuses_rows_under_a_key_missing_from_the_ring(
    settings: Settings, pool: Pool
) -> None:
    key_a, key_b, key_c = (Fernet.generate_key().decode() for _ in range(3))
    await _seed_under(pool, PayloadCipher([key_c]), 2)
    before = await _stored(pool)
    with pytest.raises(PayloadCryptoError, match=PayloadCipher([key_c]).key_id):
        await rotate_payloads(pool, PayloadCipher([key_b, key_a]))
    assert await _stored(pool) == before
    code, _, stderr = await _run_cli(settings, f"{key_b},{key_a}", "rotate-payload-keys")
    assert code == 1 and "not in REMINDERS_PAYLOAD_KEYS" in stderr
