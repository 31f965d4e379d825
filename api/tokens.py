"""JWT bearer tokens: verified with keys and algorithms from settings only."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import jwt

from api.auth import SCOPES, Principal
from core.settings import Settings

SYMMETRIC = frozenset({"HS256", "HS384", "HS512"})


class InvalidToken(Exception):
    """The token is malformed, forged, expired, or meant for someone else."""


class TokenVerifier:
    """Checks signature, ``exp`` (required), ``aud`` and ``iss``; turns claims into a principal.

    Claims: ``sub`` (who), ``scope`` (space-separated) or ``scopes`` (list), and
    ``assistant_ids`` (a list of UUIDs, or ``"*"`` for every assistant).
    """

    def __init__(self, settings: Settings) -> None:
        self.algorithms = [a.strip() for a in settings.jwt_algorithms.split(",") if a.strip()]
        if "none" in (a.lower() for a in self.algorithms):
            raise ValueError("REMINDERS_JWT_ALGORITHMS must not allow 'none'")
        symmetric = [a for a in self.algorithms if a in SYMMETRIC]
        if symmetric and [a for a in self.algorithms if a not in SYMMETRIC]:
            # One key type per deployment: mixing lets a public key be misused as an HMAC secret.
            raise ValueError("REMINDERS_JWT_ALGORITHMS mixes HMAC and public-key algorithms")
        self.key: str | None
        if symmetric:
            self.key = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
        else:
            self.key = settings.jwt_public_key
        self.audience = settings.jwt_audience
        self.issuer = settings.jwt_issuer
        self.leeway = settings.jwt_leeway_seconds

    @property
    def enabled(self) -> bool:
        """Whether a key is configured; without one every bearer token is refused."""
        return bool(self.key)

    def verify(self, token: str) -> Principal:
        """The principal a valid token stands for, or InvalidToken."""
        if not self.key:
            raise InvalidToken("bearer tokens are not accepted here")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        return _principal(claims)


def _principal(claims: dict[str, Any]) -> Principal:
    raw_scopes = claims.get("scopes", claims.get("scope", ""))
    scopes = raw_scopes.split() if isinstance(raw_scopes, str) else raw_scopes
    if not isinstance(scopes, list) or not all(s in SCOPES for s in scopes):
        raise InvalidToken("unknown scope in token")
    raw_assistants = claims.get("assistant_ids", [])
    assistants: frozenset[UUID] | None
    if raw_assistants == "*":
        assistants = None
    elif isinstance(raw_assistants, list):
        try:
            assistants = frozenset(UUID(str(a)) for a in raw_assistants)
        except ValueError as exc:
            raise InvalidToken("assistant_ids must be UUIDs") from exc
    else:
        raise InvalidToken("assistant_ids must be a list of UUIDs or '*'")
    return Principal(f"jwt:{claims['sub']}", assistants, frozenset(scopes))
