"""Payload encryption at rest: Fernet (AES-128-CBC + HMAC-SHA256) tokens under a key ring.

``REMINDERS_PAYLOAD_KEYS`` holds comma-separated Fernet keys: the first encrypts, every one
decrypts, so a key is rotated by putting a new one first and running
``reminders rotate-payload-keys``. Keys and payloads are never logged; a row records only the
``key_id`` (a fingerprint of the key it was encrypted under), never the key.
"""

from __future__ import annotations

import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from core.exceptions import PayloadDecryptionError, PayloadKeyError
from core.settings import Settings


def key_fingerprint(key: str) -> str:
    """A short, non-reversible id of a key: the first 8 hex digits of its SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


class PayloadCipher:
    """Encrypts with the primary key, decrypts with any key of the ring."""

    __slots__ = ("_fernet", "key_ids", "primary_key_id")

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise PayloadKeyError("no payload key given (set REMINDERS_PAYLOAD_KEYS)")
        fernets: list[Fernet] = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.encode()))
            except (ValueError, TypeError):
                # Never echo the key itself: say which one is malformed.
                raise PayloadKeyError(
                    f"payload key #{position} of REMINDERS_PAYLOAD_KEYS is not a valid Fernet key "
                    "(32 url-safe base64-encoded bytes)"
                ) from None
        self._fernet = MultiFernet(fernets)
        self.key_ids = tuple(key_fingerprint(key) for key in keys)
        self.primary_key_id = self.key_ids[0]

    @classmethod
    def from_settings(cls, settings: Settings) -> PayloadCipher:
        """The cipher of ``settings.payload_keys``, or a clear error when it is unset."""
        if settings.payload_keys is None:
            raise PayloadKeyError(
                "REMINDERS_PAYLOAD_KEYS is not set: give one or more comma-separated Fernet keys "
                "(or start everything with `make run`, which makes one under the data dir)"
            )
        keys = [k.strip() for k in settings.payload_keys.get_secret_value().split(",") if k.strip()]
        return cls(keys)

    @property
    def key_id(self) -> str:
        """The fingerprint of the primary key, stored beside each ciphertext."""
        return self.primary_key_id

    def encrypt(self, text: str) -> bytes:
        """A Fernet token of ``text`` under the primary key."""
        return self._fernet.encrypt(text.encode())

    def decrypt(self, token: bytes) -> str:
        """The text of a token made under any key of the ring."""
        try:
            return self._fernet.decrypt(bytes(token)).decode()
        except (InvalidToken, UnicodeDecodeError):
            raise PayloadDecryptionError(
                "payload cannot be decrypted with any key of REMINDERS_PAYLOAD_KEYS"
            ) from None

    def rotate(self, token: bytes) -> bytes:
        """The same text re-encrypted under the primary key."""
        try:
            return self._fernet.rotate(bytes(token))
        except InvalidToken:
            raise PayloadDecryptionError(
                "payload cannot be decrypted with any key of REMINDERS_PAYLOAD_KEYS"
            ) from None

    def read(self, ciphertext: bytes | None, legacy_plaintext: str | None) -> str:
        """A row's payload: decrypted, or the plaintext of a row written before encryption."""
        if ciphertext is not None:
            return self.decrypt(ciphertext)
        if legacy_plaintext is None:
            raise PayloadDecryptionError("reminder row has neither ciphertext nor plaintext payload")
        return legacy_plaintext

    def __repr__(self) -> str:
        return f"PayloadCipher(key_ids={list(self.key_ids)})"
