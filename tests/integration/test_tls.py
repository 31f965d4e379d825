"""The API over HTTPS: a CA and a server certificate made here, uvicorn serving them, and clients
that verify the certificate against that CA."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core import migrate
from core.settings import Settings
from tests.conftest import TEST_API_KEY
from tests.factories import ASSISTANT_ID

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    certfile: Path
    keyfile: Path


CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_pki(directory: Path) -> Pki:
    """A throw-away CA and a server certificate it signs for 127.0.0.1 and localhost."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Reminder Service test CA"))
        .issuer_name(_name("Reminder Service test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(CA_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    pki.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.certfile.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    pki.keyfile.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pki.keyfile.chmod(0o600)
    return pki


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class TlsApi:
    port: int
    pki: Pki

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def trusting_client(self, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
        """A client that verifies the server certificate against the test CA only."""
        context = ssl.create_default_context(cafile=str(self.pki.ca_file))
        return httpx.AsyncClient(base_url=self.url, verify=context, headers=headers)


@pytest.fixture
async def tls_api(
    tmp_path: Path, database_url: str, redis_url: str, settings: Settings
) -> AsyncIterator[TlsApi]:
    """uvicorn serving the API over TLS, started the way `reminders up` starts it."""
    pki = make_pki(tmp_path)
    port = _free_port()
    env = {
        **os.environ,
        "REMINDERS_DATABASE_URL": database_url,
        "REMINDERS_REDIS_URL": redis_url,
        "REMINDERS_BOOTSTRAP_API_KEY": TEST_API_KEY,
        "REMINDERS_LOG_FORMAT": "json",
    }
    if settings.payload_keys is not None:  # the tests' payload encryption key
        env["REMINDERS_PAYLOAD_KEYS"] = settings.payload_keys.get_secret_value()
    argv = [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--port", str(port),
            "--ssl-certfile", str(pki.certfile), "--ssl-keyfile", str(pki.keyfile)]  # fmt: skip
    api = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env)
    served = TlsApi(port, pki)
    try:
        async with served.trusting_client() as client:
            for _ in range(150):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    if api.poll() is not None:
                        pytest.fail(f"the API exited with {api.returncode} while starting")
                await asyncio.sleep(0.1)
            else:
                pytest.fail("the API did not answer over TLS within 15 s")
        yield served
    finally:
        api.terminate()
        assert api.wait(timeout=15) in (0, -signal.SIGTERM), "uvicorn did not stop cleanly"


async def test_the_api_serves_https_with_a_verifiable_certificate(tls_api: TlsApi) -> None:
    async with tls_api.trusting_client(headers={"X-API-Key": TEST_API_KEY}) as client:
        health = await client.get("/healthz")
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        created = await client.post(
            "/reminders/",
            json={
                "user_id": 123,
                "assistant_id": str(ASSISTANT_ID),
                "type": "one_time",
                "trigger_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
                "payload": '{"text": "over TLS"}',
            },
        )
        assert created.status_code == 201, created.text
        assert created.json()["payload"] == '{"text":"over TLS"}'


async def test_localhost_is_in_the_certificate_too(tls_api: TlsApi) -> None:
    context = ssl.create_default_context(cafile=str(tls_api.pki.ca_file))
    async with httpx.AsyncClient(verify=context) as client:
        assert (await client.get(f"https://localhost:{tls_api.port}/healthz")).status_code == 200


async def test_plain_http_and_untrusted_clients_are_refused(tls_api: TlsApi) -> None:
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.TransportError):
            await client.get(f"http://127.0.0.1:{tls_api.port}/healthz")
        # Verification is really on: the system trust store does not know the test CA.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(f"{tls_api.url}/healthz")


async def test_migrations_accept_a_libpq_sslmode_in_the_url(database_url: str) -> None:
    # The test server has no TLS: `prefer` falls back to plain, but the URL must be understood.
    assert "?" not in database_url
    await asyncio.to_thread(migrate.upgrade, database_url + "?sslmode=prefer")
