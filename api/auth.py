"""Credentials: API keys (settings or database) and JWT bearer tokens, with scopes and assistants."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

import asyncpg

from core.db import Pool
from core.queries import queries
from core.settings import Settings

READ = "reminders:read"
WRITE = "reminders:write"
ADMIN = "admin"
SCOPES = (READ, WRITE, ADMIN)

KEY_PREFIX = "rmd_"
# Characters of a key kept in clear: enough to tell keys apart in a listing, nothing to guess from.
DISPLAY_PREFIX_LENGTH = len(KEY_PREFIX) + 8


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller; ``assistant_ids`` None means it may act for every assistant."""

    credential_id: str
    assistant_ids: frozenset[UUID] | None
    scopes: frozenset[str] = frozenset({READ, WRITE})

    def has_scope(self, scope: str) -> bool:
        """Whether the credential grants ``scope`` (admin grants everything)."""
        return ADMIN in self.scopes or scope in self.scopes

    def can_act_for(self, assistant_id: UUID) -> bool:
        """Whether this credential covers ``assistant_id``."""
        return self.assistant_ids is None or assistant_id in self.assistant_ids

    def visible_assistants(self) -> list[UUID] | None:
        """The SQL filter for what this caller may see (None: everything)."""
        return None if self.assistant_ids is None else sorted(self.assistant_ids)

    def creator_for(self, assistant_id: UUID) -> UUID:
        """``created_by_assistant_id``: the credential's own assistant, else the reminder's."""
        if self.assistant_ids is not None and len(self.assistant_ids) == 1:
            return next(iter(self.assistant_ids))
        return assistant_id


class AmbiguousCredentials(ValueError):
    """More than one credential header: which one counts would be a guess (and a way around limits)."""


@dataclass(frozen=True, slots=True)
class Presented:
    """The one credential a request carries: an API key or a bearer token."""

    kind: Literal["api_key", "bearer"]
    secret: str


_CREDENTIAL_HEADERS = (b"x-api-key", b"authorization")


def presented_credential(headers: Iterable[tuple[bytes, bytes]]) -> Presented | None:
    """The request's credential from its raw headers; None without one (or not a Bearer one).

    Refuses a second ``X-API-Key`` or ``Authorization`` header: authentication and the rate limit
    must see the same credential. The scheme is case-insensitive (RFC 9110), so ``bearer`` is Bearer.
    """
    found = [(name, value) for name, value in headers if name in _CREDENTIAL_HEADERS]
    if len(found) > 1:
        names = ", ".join(sorted({"X-API-Key" if n == b"x-api-key" else "Authorization" for n, _ in found}))
        raise AmbiguousCredentials(
            f"send one credential header, X-API-Key or Authorization; this request has {len(found)} ({names})"
        )
    if not found:
        return None
    name, raw = found[0]
    value = raw.decode("latin-1").strip()
    if name == b"x-api-key":
        return Presented("api_key", value) if value else None
    scheme, _, token = value.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return Presented("bearer", token)


def key_hash(secret: str) -> bytes:
    """What is stored of a key: its SHA-256 (the secret has 256 random bits, no salt needed)."""
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly made key: the secret is shown once, only the hash and prefix are stored."""

    secret: str
    prefix: str
    secret_hash: bytes


def new_api_key() -> NewKey:
    """A random key: ``rmd_`` and 32 random bytes, URL-safe."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    return NewKey(secret, secret[:DISPLAY_PREFIX_LENGTH], key_hash(secret))


class KeyRing:
    """Keys from settings (the bootstrap admin key, REMINDERS_API_KEYS), held only as hashes."""

    def __init__(self, entries: Iterable[tuple[str, Principal]]) -> None:
        self._entries = [(key_hash(secret), principal) for secret, principal in entries if secret]

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        """The bootstrap key (admin, all assistants) and ``REMINDERS_API_KEYS`` entries."""
        entries: list[tuple[str, Principal]] = []
        if settings.bootstrap_api_key is not None:
            admin = Principal("bootstrap", None, frozenset({ADMIN}))
            entries.append((settings.bootstrap_api_key.get_secret_value(), admin))
        for index, raw in enumerate(part.strip() for part in settings.api_keys.split(",")):
            if not raw:
                continue
            secret, _, scope = raw.partition("@")
            assistants = frozenset(UUID(a.strip()) for a in scope.split(";") if a.strip()) if scope else None
            entries.append((secret, Principal(f"settings-key-{index}", assistants)))
        return cls(entries)

    def authenticate(self, secret: str) -> Principal | None:
        """The principal whose key is ``secret``, or None."""
        digest = key_hash(secret)
        found: Principal | None = None
        for known, principal in self._entries:
            # Check every entry, so timing says nothing about which one matched.
            if hmac.compare_digest(known, digest) and found is None:
                found = principal
        return found


async def authenticate_key(pool: Pool, keyring: KeyRing, secret: str) -> Principal | None:
    """The principal of an API key from settings or the database (revoked keys fail at once)."""
    principal = keyring.authenticate(secret)
    if principal is not None or not secret.startswith(KEY_PREFIX):
        return principal
    digest = key_hash(secret)
    rows: list[asyncpg.Record] = await pool.fetch(
        queries["api_keys_by_prefix"], secret[:DISPLAY_PREFIX_LENGTH]
    )
    for row in rows:
        if hmac.compare_digest(bytes(row["secret_hash"]), digest) and principal is None:
            assistants = row["assistant_ids"]
            principal = Principal(
                f"key:{row['id']}",
                None if assistants is None else frozenset(assistants),
                frozenset(row["scopes"]),
            )
    return principal
