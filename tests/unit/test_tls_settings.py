"""TLS settings, the `up` command line they produce, and TLS database/Redis URLs: no servers."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as redis
from pydantic import ValidationError
from redis.asyncio.connection import SSLConnection
from sqlalchemy.ext.asyncio import create_async_engine

from cli.up import api_command, local_api_url
from core.migrate import sqlalchemy_url
from core.settings import Settings


@pytest.fixture(autouse=True)
def _no_tls_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REMINDERS_TLS_CERTFILE", "REMINDERS_TLS_KEYFILE", "REMINDERS_API_URL"):
        monkeypatch.delenv(name, raising=False)


def test_certificate_and_key_come_together() -> None:
    with pytest.raises(ValidationError, match="REMINDERS_TLS_CERTFILE is set but REMINDERS_TLS_KEYFILE"):
        Settings(tls_certfile=Path("cert.pem"))
    with pytest.raises(ValidationError, match="REMINDERS_TLS_KEYFILE is set but REMINDERS_TLS_CERTFILE"):
        Settings(tls_keyfile=Path("key.pem"))
    assert Settings().tls_certfile is None
    both = Settings(tls_certfile=Path("cert.pem"), tls_keyfile=Path("key.pem"))
    assert both.resolved_api_url() == "https://127.0.0.1:8000"


def test_blank_tls_variables_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMINDERS_TLS_CERTFILE", "")
    monkeypatch.setenv("REMINDERS_TLS_KEYFILE", "")
    monkeypatch.setenv("REMINDERS_API_CA_FILE", "")
    settings = Settings()
    assert (settings.tls_certfile, settings.tls_keyfile, settings.api_ca_file) == (None, None, None)


def test_up_serves_https_when_given_a_certificate() -> None:
    plain = Settings(api_host="0.0.0.0", api_port=8443)
    assert local_api_url(plain) == "http://127.0.0.1:8443"
    assert "--ssl-certfile" not in api_command(plain)

    tls = plain.model_copy(update={"tls_certfile": Path("/c/cert.pem"), "tls_keyfile": Path("/c/key.pem")})
    assert local_api_url(tls) == "https://127.0.0.1:8443"
    argv = api_command(tls)
    assert argv[argv.index("--ssl-certfile") + 1] == "/c/cert.pem"
    assert argv[argv.index("--ssl-keyfile") + 1] == "/c/key.pem"


def test_migrations_url_turns_sslmode_into_asyncpg_ssl() -> None:
    url = sqlalchemy_url("postgresql://u:p@db.example:5432/reminders?sslmode=verify-full")
    assert url == "postgresql+asyncpg://u:p@db.example:5432/reminders?ssl=verify-full"
    engine = create_async_engine(url)
    try:
        _, kwargs = engine.dialect.create_connect_args(engine.url)
    finally:
        engine.sync_engine.dispose()
    assert kwargs["ssl"] == "verify-full" and "sslmode" not in kwargs
    assert sqlalchemy_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"


async def test_migrations_url_keeps_certificate_files_through_a_dsn(tmp_path: Path) -> None:
    missing = tmp_path / "root.crt"
    engine = create_async_engine(
        sqlalchemy_url(f"postgresql://u@127.0.0.1:1/db?sslmode=verify-full&sslrootcert={missing}")
    )
    try:
        # asyncpg.connect() has no sslrootcert keyword (TypeError); read from the dsn, it is used.
        with pytest.raises(FileNotFoundError):
            async with engine.connect():
                pass
    finally:
        await engine.dispose()


async def test_asyncpg_reads_sslmode_and_sslrootcert_from_the_url(tmp_path: Path) -> None:
    # Both are read (and fail) before any connection is attempted, so no server is needed.
    with pytest.raises(asyncpg.ClientConfigurationError, match="sslmode"):
        await asyncpg.connect("postgresql://u@127.0.0.1:1/db?sslmode=bogus")
    missing = tmp_path / "root.crt"
    with pytest.raises(FileNotFoundError):
        await asyncpg.connect(f"postgresql://u@127.0.0.1:1/db?sslmode=verify-full&sslrootcert={missing}")


async def test_redis_accepts_rediss_urls() -> None:
    client = redis.from_url("rediss://:pw@cache.example:6380/0?ssl_cert_reqs=required")
    try:
        assert client.connection_pool.connection_class is SSLConnection
        assert client.connection_pool.connection_kwargs["ssl_cert_reqs"] == "required"
    finally:
        await client.aclose()
