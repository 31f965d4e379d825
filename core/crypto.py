"""Payload encryption at rest: AES-256-GCM tokens under a key ring (Fernet tokens still read).

``REMINDERS_PAYLOAD_KEYS`` holds comma-separated Fernet-format keys (32 url-safe base64 bytes):
the first encrypts, every one decrypts, so a key is rotated by putting a new one first and running
``reminders rotate-payload-keys``. Keys and payloads are never logged; a row records only the
``key_id`` (a fingerprint of the key it was encrypted under), never the key.

Tokens are ``0x02 | key tag (4) | nonce (12) | ciphertext + GCM tag``, the header bound as
associated data. GCM is one call into OpenSSL: decrypting a Fernet token (CBC + HMAC through
several Python objects) cost a poller about 25 µs per fire, an eighth of a burst's whole budget.
Rows written before this format hold Fernet tokens (they start with ``gAAAA``, base64 of 0x80);
those still decrypt, and a rotation rewrites them in the new format.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.exceptions import PayloadDecryptionError, PayloadKeyError
from core.settings import Settings

VERSION = b"\x02"
_KEY_TAG_SIZE = 4
_NONCE_SIZE = 12
_HEADER_SIZE = 1 + _KEY_TAG_SIZE
# Domain separation: the GCM key is derived from, never equal to, the configured key material.
_HKDF_INFO = b"reminder-service payload aes-256-gcm v2"


def key_fingerprint(key: str) -> str:
    """A short, non-reversible id of a key: the first 8 hex digits of its SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def _gcm_key(key: str) -> AESGCM:
    raw = base64.urlsafe_b64decode(key.encode())
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(raw)
    return AESGCM(derived)


class PayloadCipher:
    """Encrypts with the primary key, decrypts with any key of the ring."""

    __slots__ = ("_fernet", "_gcm", "_primary", "key_ids", "primary_key_id")

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise PayloadKeyError("no payload key given (set REMINDERS_PAYLOAD_KEYS)")
        fernets: list[Fernet] = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.encode()))
            except (ValueError, TypeError, binascii.Error):
                # Never echo the key itself: say which one is malformed.
                raise PayloadKeyError(
                    f"payload key #{position} of REMINDERS_PAYLOAD_KEYS is not a valid Fernet key "
                    "(32 url-safe base64-encoded bytes)"
                ) from None
        self._fernet = MultiFernet(fernets)
        self.key_ids = tuple(key_fingerprint(key) for key in keys)
        self.primary_key_id = self.key_ids[0]
        # By the 4-byte tag a token names its key with (the fingerprint's first bytes); two keys of
        # a ring sharing a tag (1 in 4 billion) are both tried.
        self._gcm: dict[bytes, list[AESGCM]] = {}
        for key, key_id in zip(keys, self.key_ids, strict=True):
            self._gcm.setdefault(bytes.fromhex(key_id), []).append(_gcm_key(key))
        primary_tag = bytes.fromhex(self.primary_key_id)
        self._primary = (primary_tag, self._gcm[primary_tag][0])

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
        """A token of ``text`` under the primary key (a fresh random nonce each time)."""
        tag, gcm = self._primary
        header = VERSION + tag
        nonce = os.urandom(_NONCE_SIZE)
        return header + nonce + gcm.encrypt(nonce, text.encode(), header)

    def decrypt(self, token: bytes) -> str:
        """The text of a token made under any key of the ring, in either format."""
        token = bytes(token)
        try:
            if token[:1] == VERSION:
                return self._decrypt_gcm(token).decode()
            return self._fernet.decrypt(token).decode()
        except (InvalidToken, InvalidTag, UnicodeDecodeError):
            raise PayloadDecryptionError(
                "payload cannot be decrypted with any key of REMINDERS_PAYLOAD_KEYS"
            ) from None

    def _decrypt_gcm(self, token: bytes) -> bytes:
        header = token[:_HEADER_SIZE]
        nonce = token[_HEADER_SIZE : _HEADER_SIZE + _NONCE_SIZE]
        body = token[_HEADER_SIZE + _NONCE_SIZE :]
        for gcm in self._gcm.get(header[1:], ()):
            try:
                return gcm.decrypt(nonce, body, header)
            except InvalidTag:
                continue
        raise InvalidTag

    def rotate(self, token: bytes) -> bytes:
        """The same text re-encrypted under the primary key, in the current format."""
        return self.encrypt(self.decrypt(token))

    def read(self, ciphertext: bytes | None, legacy_plaintext: str | None) -> str:
        """A row's payload: decrypted, or the plaintext of a row written before encryption."""
        if ciphertext is not None:
            return self.decrypt(ciphertext)
        if legacy_plaintext is None:
            raise PayloadDecryptionError("reminder row has neither ciphertext nor plaintext payload")
        return legacy_plaintext

    def __repr__(self) -> str:
        return f"PayloadCipher(key_ids={list(self.key_ids)})"
