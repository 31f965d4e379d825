"""API-key credentials: who is calling, and which assistants they may act for."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from core.settings import Settings


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller; ``assistant_ids`` None means it may act for every assistant."""

    credential_id: str
    assistant_ids: frozenset[UUID] | None

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


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class KeyRing:
    """The accepted keys, held only as SHA-256 digests and compared in constant time."""

    def __init__(self, entries: Iterable[tuple[str, Principal]]) -> None:
        self._entries = [(_digest(secret), principal) for secret, principal in entries if secret]

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        """The bootstrap key (all assistants) and ``REMINDERS_API_KEYS`` entries."""
        entries: list[tuple[str, Principal]] = []
        if settings.bootstrap_api_key is not None:
            entries.append((settings.bootstrap_api_key.get_secret_value(), Principal("bootstrap", None)))
        for index, raw in enumerate(part.strip() for part in settings.api_keys.split(",")):
            if not raw:
                continue
            secret, _, scope = raw.partition("@")
            assistants = (
                frozenset(UUID(a.strip()) for a in scope.split(";") if a.strip()) if scope else None
            )
            entries.append((secret, Principal(f"settings-key-{index}", assistants)))
        return cls(entries)

    def authenticate(self, secret: str) -> Principal | None:
        """The principal whose key is ``secret``, or None."""
        digest = _digest(secret)
        found: Principal | None = None
        for known, principal in self._entries:
            # Check every entry, so timing says nothing about which one matched.
            if hmac.compare_digest(known, digest) and found is None:
                found = principal
        return found
