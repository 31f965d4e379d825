"""The payload cipher: authenticated encryption, key rings, rotation, and errors that hide secrets."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.fernet import Fernet

from core.crypto import VERSION, PayloadCipher, key_fingerprint
from core.exceptions import PayloadDecryptionError, PayloadKeyError
from core.settings import Settings

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
TEXT = '{"text": "Meeting", "user_id": 123}'


def test_round_trip_and_the_token_hides_the_text() -> None:
    cipher = PayloadCipher([KEY_A])
    token = cipher.encrypt(TEXT)
    assert b"Meeting" not in token
    assert cipher.decrypt(token) == TEXT
    # Each token carries a random nonce: the same text never encrypts to the same bytes.
    assert cipher.encrypt(TEXT) != token
    assert token[:1] == VERSION


def test_fernet_tokens_from_before_the_gcm_format_still_decrypt_and_rotate_to_it() -> None:
    legacy = Fernet(KEY_A.encode()).encrypt(TEXT.encode())
    cipher = PayloadCipher([KEY_B, KEY_A])
    assert cipher.decrypt(legacy) == TEXT
    rotated = cipher.rotate(legacy)
    assert rotated[:1] == VERSION
    assert PayloadCipher([KEY_B]).decrypt(rotated) == TEXT


@pytest.mark.parametrize("position", [0, 1, 5, 20, -1])
def test_any_flipped_byte_of_a_gcm_token_is_refused(position: int) -> None:
    # The header (format and key tag) is authenticated too, not only the ciphertext.
    cipher = PayloadCipher([KEY_A])
    token = bytearray(cipher.encrypt(TEXT))
    token[position] ^= 1
    with pytest.raises(PayloadDecryptionError):
        cipher.decrypt(bytes(token))


def test_the_gcm_key_is_derived_not_the_configured_key_itself() -> None:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    token = PayloadCipher([KEY_A]).encrypt(TEXT)
    raw = base64.urlsafe_b64decode(KEY_A)
    with pytest.raises(InvalidTag):
        AESGCM(raw).decrypt(token[5:17], token[17:], token[:5])


def test_key_id_is_a_short_fingerprint_never_the_key() -> None:
    cipher = PayloadCipher([KEY_A, KEY_B])
    assert cipher.key_id == key_fingerprint(KEY_A) == hashlib.sha256(KEY_A.encode()).hexdigest()[:8]
    assert cipher.key_ids == (key_fingerprint(KEY_A), key_fingerprint(KEY_B))
    assert KEY_A not in repr(cipher) and KEY_B not in repr(cipher)


def test_secondary_keys_only_decrypt() -> None:
    old = PayloadCipher([KEY_A]).encrypt(TEXT)
    ring = PayloadCipher([KEY_B, KEY_A])
    assert ring.decrypt(old) == TEXT
    fresh = ring.encrypt(TEXT)
    assert PayloadCipher([KEY_B]).decrypt(fresh) == TEXT
    with pytest.raises(PayloadDecryptionError):
        PayloadCipher([KEY_A]).decrypt(fresh)


def test_rotate_moves_a_token_to_the_primary_key() -> None:
    old = PayloadCipher([KEY_A]).encrypt(TEXT)
    rotated = PayloadCipher([KEY_B, KEY_A]).rotate(old)
    assert PayloadCipher([KEY_B]).decrypt(rotated) == TEXT
    with pytest.raises(PayloadDecryptionError):
        PayloadCipher([KEY_B]).rotate(PayloadCipher([Fernet.generate_key().decode()]).encrypt(TEXT))


def test_a_tampered_token_is_refused_without_echoing_anything() -> None:
    cipher = PayloadCipher([KEY_A])
    token = bytearray(cipher.encrypt(TEXT))
    token[-5] ^= 1
    with pytest.raises(PayloadDecryptionError) as caught:
        cipher.decrypt(bytes(token))
    assert "Meeting" not in str(caught.value) and KEY_A not in str(caught.value)


def test_read_prefers_ciphertext_and_falls_back_to_legacy_plaintext() -> None:
    cipher = PayloadCipher([KEY_A])
    assert cipher.read(cipher.encrypt(TEXT), None) == TEXT
    assert cipher.read(None, TEXT) == TEXT
    with pytest.raises(PayloadDecryptionError):
        cipher.read(None, None)


def test_from_settings_splits_the_comma_separated_ring() -> None:
    cipher = PayloadCipher.from_settings(Settings(payload_keys=f" {KEY_B} , {KEY_A} "))
    assert cipher.key_ids == (key_fingerprint(KEY_B), key_fingerprint(KEY_A))


@pytest.mark.parametrize("value", [None, "", " , "])
def test_no_keys_is_a_clear_error(value: str | None) -> None:
    with pytest.raises(PayloadKeyError, match="REMINDERS_PAYLOAD_KEYS"):
        PayloadCipher.from_settings(Settings(payload_keys=value))


def test_a_malformed_key_is_named_by_position_not_echoed() -> None:
    secret = "not-a-fernet-key-but-secret"
    with pytest.raises(PayloadKeyError, match="#2") as caught:
        PayloadCipher([KEY_A, secret])
    assert secret not in str(caught.value)


def test_settings_never_show_the_keys() -> None:
    settings = Settings(payload_keys=KEY_A)
    assert KEY_A not in repr(settings) and KEY_A not in str(settings.model_dump())
