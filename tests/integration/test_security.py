"""Credentials, scopes and isolation, tried as an attacker would (OWASP API1, API2, API5)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import SecretStr

from api.app import create_app
from api.auth import ADMIN, READ, WRITE, new_api_key
from core.db import Pool
from core.queries import queries
from core.settings import Settings
from tests.conftest import TEST_API_KEY

ASSISTANT_A = uuid.UUID("aaaaaaaa-0000-4000-8000-00000000000a")
ASSISTANT_B = uuid.UUID("bbbbbbbb-0000-4000-8000-00000000000b")
HS_SECRET = "a-test-secret-that-is-long-enough-for-hs256!"


async def make_key(
    pool: Pool, scopes: list[str], assistants: list[uuid.UUID] | None
) -> tuple[uuid.UUID, str]:
    key = new_api_key()
    key_id = uuid.uuid4()
    await pool.execute(
        queries["insert_api_key"], key_id, "test", key.prefix, key.secret_hash, scopes, assistants
    )
    return key_id, key.secret


def client_for(settings: Settings, pool: Pool) -> httpx.AsyncClient:
    app = create_app(settings)
    app.state.pool = pool
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


@pytest.fixture
async def api(settings: Settings, pool: Pool) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(settings.model_copy(update={"jwt_secret": SecretStr(HS_SECRET)}), pool) as client:
        yield client


def body(assistant: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "user_id": 7,
        "assistant_id": str(assistant),
        "type": "one_time",
        "trigger_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        "payload": '{"text": "secret plans"}',
    }
    data.update(overrides)
    return data


def token(claims: dict[str, Any], key: Any = HS_SECRET, algorithm: str = "HS256") -> str:
    base = {
        "sub": "assistant-a",
        "aud": "reminder-service",
        "exp": int(time.time()) + 300,
        "scope": f"{READ} {WRITE}",
        "assistant_ids": [str(ASSISTANT_A)],
    }
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, key, algorithm=algorithm)


async def test_database_key_works_and_a_revoked_one_fails_at_once(api: httpx.AsyncClient, pool: Pool) -> None:
    key_id, secret = await make_key(pool, [READ, WRITE], [ASSISTANT_A])
    headers = {"X-API-Key": secret}
    created = await api.post("/reminders/", json=body(ASSISTANT_A), headers=headers)
    assert created.status_code == 201
    assert created.json()["created_by_assistant_id"] == str(ASSISTANT_A)
    assert await pool.fetchval("SELECT count(*) FROM api_keys WHERE secret_hash = $1", secret.encode()) == 0
    await pool.execute(queries["revoke_api_key"], key_id)
    denied = await api.get(f"/reminders/{created.json()['id']}", headers=headers)
    assert denied.status_code == 401
    assert "Bearer" in denied.headers["WWW-Authenticate"]


async def test_a_key_differing_in_one_character_is_refused(api: httpx.AsyncClient, pool: Pool) -> None:
    _, secret = await make_key(pool, [READ], None)
    forged = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    assert (await api.get("/reminders/scheduled", headers={"X-API-Key": forged})).status_code == 401
    assert (await api.get("/reminders/scheduled", headers={"X-API-Key": secret})).status_code == 200


async def test_scopes_are_enforced_with_403(api: httpx.AsyncClient, pool: Pool) -> None:
    _, reader = await make_key(pool, [READ], None)
    _, writer = await make_key(pool, [WRITE], None)
    _, admin = await make_key(pool, [ADMIN], None)
    assert (
        await api.post("/reminders/", json=body(ASSISTANT_A), headers={"X-API-Key": reader})
    ).status_code == 403
    created = await api.post("/reminders/", json=body(ASSISTANT_A), headers={"X-API-Key": writer})
    assert created.status_code == 201
    rid = created.json()["id"]
    assert (await api.get(f"/reminders/{rid}", headers={"X-API-Key": writer})).status_code == 403
    assert (await api.get(f"/reminders/{rid}", headers={"X-API-Key": reader})).status_code == 200
    assert (await api.delete(f"/reminders/{rid}", headers={"X-API-Key": reader})).status_code == 403
    assert (await api.delete(f"/reminders/{rid}", headers={"X-API-Key": admin})).status_code == 204


async def test_assistants_cannot_touch_each_others_reminders(api: httpx.AsyncClient, pool: Pool) -> None:
    _, key_a = await make_key(pool, [READ, WRITE], [ASSISTANT_A])
    _, key_b = await make_key(pool, [READ, WRITE], [ASSISTANT_B])
    a, b = {"X-API-Key": key_a}, {"X-API-Key": key_b}
    rid = (await api.post("/reminders/", json=body(ASSISTANT_A), headers=a)).json()["id"]

    assert (await api.post("/reminders/", json=body(ASSISTANT_A), headers=b)).status_code == 403
    attempts = [
        ("GET", f"/reminders/{rid}", None),
        ("GET", f"/reminders/{rid}/history", None),
        ("PATCH", f"/reminders/{rid}", {"status": "paused"}),
        ("POST", f"/reminders/{rid}/ack", {"event_id": str(uuid.uuid4())}),
        ("DELETE", f"/reminders/{rid}", None),
    ]
    for method, path, payload in attempts:
        response = await api.request(method, path, json=payload, headers=b)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json() == {"detail": "reminder not found"}
    assert (await api.get("/reminders/user/7", headers=b)).json()["total"] == 0
    assert (await api.get("/reminders/scheduled", headers=b)).json()["total"] == 0
    assert (await api.get("/reminders/user/7", headers=a)).json()["total"] == 1
    still = (await api.get(f"/reminders/{rid}", headers=a)).json()
    assert still["status"] == "pending"


async def test_valid_jwt_acts_for_its_assistants(api: httpx.AsyncClient) -> None:
    headers = {"Authorization": f"Bearer {token({})}"}
    assert (await api.post("/reminders/", json=body(ASSISTANT_A), headers=headers)).status_code == 201
    assert (await api.post("/reminders/", json=body(ASSISTANT_B), headers=headers)).status_code == 403
    read_only = {"Authorization": f"Bearer {token({'scope': READ})}"}
    assert (await api.post("/reminders/", json=body(ASSISTANT_A), headers=read_only)).status_code == 403


def _rsa_pem() -> tuple[Any, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.decode()


@pytest.mark.parametrize(
    "attack",
    [
        "expired",
        "wrong_audience",
        "wrong_secret",
        "alg_none",
        "no_exp",
        "rs256_when_hs256",
        "garbage",
        "bad_scope",
    ],
)
async def test_jwt_attacks_are_401(api: httpx.AsyncClient, attack: str) -> None:
    private, _ = _rsa_pem()
    makers: dict[str, Callable[[], str]] = {
        "expired": lambda: token({"exp": int(time.time()) - 3600}),
        "wrong_audience": lambda: token({"aud": "someone-else"}),
        "wrong_secret": lambda: token({}, key="x" * 48),
        "alg_none": _unsigned_token,
        "no_exp": lambda: token({"exp": None}),
        "rs256_when_hs256": lambda: token({}, key=private, algorithm="RS256"),
        "garbage": lambda: "not.a.token",
        "bad_scope": lambda: token({"scope": "superuser"}),
    }
    forged = makers[attack]()
    response = await api.get("/reminders/scheduled", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401, response.text
    assert "Bearer" in response.headers["WWW-Authenticate"]


async def test_public_key_used_as_hmac_secret_is_refused(settings: Settings, pool: Pool) -> None:
    private, public_pem = _rsa_pem()
    rs_settings = settings.model_copy(update={"jwt_algorithms": "RS256", "jwt_public_key": public_pem})
    async with client_for(rs_settings, pool) as api:
        good = token({}, key=private, algorithm="RS256")
        assert (
            await api.get("/reminders/scheduled", headers={"Authorization": f"Bearer {good}"})
        ).status_code == 200
        # The classic key-confusion attack: sign HS256 with the public key as the shared secret.
        confused = _hs256_with_raw_key(public_pem)
        response = await api.get("/reminders/scheduled", headers={"Authorization": f"Bearer {confused}"})
        assert response.status_code == 401
        other = ec.generate_private_key(ec.SECP256R1())
        wrong_type = token({}, key=other, algorithm="ES256")
        response = await api.get("/reminders/scheduled", headers={"Authorization": f"Bearer {wrong_type}"})
        assert response.status_code == 401


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned_token() -> str:
    """``alg: none``: a token with no signature at all."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    claims = {"sub": "x", "aud": "reminder-service", "exp": int(time.time()) + 60, "scope": ADMIN}
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def _hs256_with_raw_key(secret: str) -> str:
    """An HS256 token made by hand: PyJWT itself refuses to use a PEM key as an HMAC secret."""

    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": "x", "aud": "reminder-service", "exp": int(time.time()) + 60, "scope": ADMIN}
    payload = _b64(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


async def test_history_shows_every_action_once_newest_first(api: httpx.AsyncClient) -> None:
    headers = {"X-API-Key": TEST_API_KEY, "X-Request-ID": "req-123"}
    rid = (await api.post("/reminders/", json=body(ASSISTANT_A), headers=headers)).json()["id"]
    await api.patch(f"/reminders/{rid}", json={"status": "paused"}, headers=headers)
    await api.patch(f"/reminders/{rid}", json={"status": "active"}, headers=headers)
    response = await api.delete(f"/reminders/{rid}", headers=headers)
    assert response.headers["X-Request-ID"] == "req-123"
    history = (await api.get(f"/reminders/{rid}/history", headers=headers)).json()
    assert [e["action"] for e in history["audit"]["items"]] == ["cancel", "resume", "pause", "create"]
    assert history["audit"]["total"] == 4
    assert all(e["actor"] == "bootstrap" for e in history["audit"]["items"])
    assert all(e["details"]["request_id"] == "req-123" for e in history["audit"]["items"])
    assert history["deliveries"] == {"items": [], "total": 0}
    assert "secret plans" not in str(history)


async def test_live_reminders_per_assistant_are_capped(settings: Settings, pool: Pool) -> None:
    capped = settings.model_copy(update={"max_live_reminders_per_assistant": 2})
    async with client_for(capped, pool) as api:
        headers = {"X-API-Key": TEST_API_KEY}
        first = await api.post("/reminders/", json=body(ASSISTANT_A), headers=headers)
        await api.post("/reminders/", json=body(ASSISTANT_A), headers=headers)
        refused = await api.post("/reminders/", json=body(ASSISTANT_A), headers=headers)
        assert refused.status_code == 409
        assert "limit" in refused.json()["detail"]
        # Another assistant is unaffected, and cancelling one frees a place.
        assert (await api.post("/reminders/", json=body(ASSISTANT_B), headers=headers)).status_code == 201
        assert (await api.delete(f"/reminders/{first.json()['id']}", headers=headers)).status_code == 204
        assert (await api.post("/reminders/", json=body(ASSISTANT_A), headers=headers)).status_code == 201
