"""API keys and what they may do (api/auth.py): pure, no I/O."""

from __future__ import annotations

from uuid import UUID

import pytest
from pydantic import SecretStr

from api.auth import (
    ADMIN,
    READ,
    WRITE,
    AmbiguousCredentials,
    KeyRing,
    Presented,
    Principal,
    presented_credential,
)
from core.settings import Settings

A1 = UUID("aaaaaaaa-0000-4000-8000-000000000001")
A2 = UUID("aaaaaaaa-0000-4000-8000-000000000002")
A3 = UUID("aaaaaaaa-0000-4000-8000-000000000003")
STRANGER = UUID("ffffffff-0000-4000-8000-00000000000f")


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing.from_settings(
        Settings(
            bootstrap_api_key=SecretStr("boot-secret"),
            api_keys=f"k1, k2@{A1};{A2} , k3@{A3},,",
        )
    )


def test_bootstrap_key_is_an_admin_for_every_assistant(ring: KeyRing) -> None:
    principal = ring.authenticate("boot-secret")
    assert principal == Principal("bootstrap", None, frozenset({ADMIN}))
    assert principal.has_scope(READ) and principal.has_scope(WRITE)


def test_unscoped_settings_key_acts_for_every_assistant(ring: KeyRing) -> None:
    principal = ring.authenticate("k1")
    assert principal is not None
    assert principal.assistant_ids is None
    assert principal.credential_id == "settings-key-0"


def test_scoped_settings_keys(ring: KeyRing) -> None:
    k2 = ring.authenticate("k2")
    k3 = ring.authenticate("k3")
    assert k2 == Principal("settings-key-1", frozenset({A1, A2}))
    assert k3 == Principal("settings-key-2", frozenset({A3}))


@pytest.mark.parametrize(
    "wrong",
    ["", "k", "K1", "k1 ", " k1", "k4", "boot", "boot-secret2", f"k2@{A1};{A2}", f"k2@{A1}", "@"],
)
def test_wrong_keys_are_refused(ring: KeyRing, wrong: str) -> None:
    assert ring.authenticate(wrong) is None


def test_no_keys_configured_refuses_everything() -> None:
    empty = KeyRing.from_settings(Settings(bootstrap_api_key=None, api_keys=""))
    assert empty.authenticate("") is None
    assert empty.authenticate("anything") is None


def test_empty_secret_entries_are_ignored() -> None:
    ring = KeyRing([("", Principal("blank", None)), ("real", Principal("real", None))])
    assert ring.authenticate("") is None
    assert ring.authenticate("real") == Principal("real", None)


def test_first_matching_entry_wins() -> None:
    ring = KeyRing([("same", Principal("first", None)), ("same", Principal("second", frozenset({A1})))])
    assert ring.authenticate("same") == Principal("first", None)


def test_keyring_does_not_keep_plain_secrets() -> None:
    ring = KeyRing([("very-secret-value", Principal("p", None))])
    assert "very-secret-value" not in repr(vars(ring))


# --- Principal --------------------------------------------------------------------------------


def test_service_principal_can_act_for_anyone() -> None:
    service = Principal("svc", None)
    assert service.can_act_for(A1)
    assert service.can_act_for(STRANGER)
    assert service.visible_assistants() is None


def test_scoped_principal_acts_only_for_its_assistants() -> None:
    scoped = Principal("scoped", frozenset({A2, A1}))
    assert scoped.can_act_for(A1)
    assert scoped.can_act_for(A2)
    assert not scoped.can_act_for(A3)
    assert not scoped.can_act_for(STRANGER)


def test_visible_assistants_is_sorted() -> None:
    assert Principal("scoped", frozenset({A3, A1, A2})).visible_assistants() == [A1, A2, A3]


def test_principal_with_no_assistants_sees_nothing() -> None:
    nobody = Principal("none", frozenset())
    assert not nobody.can_act_for(A1)
    assert nobody.visible_assistants() == []


def test_creator_for_single_bound_assistant_is_that_assistant() -> None:
    single = Principal("single", frozenset({A3}))
    assert single.creator_for(A3) == A3
    # Even when asked about another (authorization is checked separately).
    assert single.creator_for(STRANGER) == A3


@pytest.mark.parametrize("assistant", [A1, A2, STRANGER])
def test_creator_for_service_key_is_the_reminders_own_assistant(assistant: UUID) -> None:
    assert Principal("svc", None).creator_for(assistant) == assistant


def test_creator_for_multi_bound_key_is_the_reminders_own_assistant() -> None:
    multi = Principal("multi", frozenset({A1, A2}))
    assert multi.creator_for(A1) == A1
    assert multi.creator_for(A2) == A2


def test_creator_for_from_settings_keys(ring: KeyRing) -> None:
    k3 = ring.authenticate("k3")
    boot = ring.authenticate("boot-secret")
    assert k3 is not None and boot is not None
    assert k3.creator_for(A3) == A3
    assert boot.creator_for(A2) == A2


@pytest.mark.parametrize("scheme", [b"Bearer", b"bearer", b"BEARER", b"bEaReR"])
def test_the_bearer_scheme_is_case_insensitive(scheme: bytes) -> None:
    headers = [(b"accept", b"*/*"), (b"authorization", scheme + b"  tok.en.sig ")]
    assert presented_credential(headers) == Presented("bearer", "tok.en.sig")


def test_an_api_key_is_the_credential_and_other_schemes_are_none() -> None:
    assert presented_credential([(b"x-api-key", b"rmd_abc")]) == Presented("api_key", "rmd_abc")
    assert presented_credential([(b"authorization", b"Basic dXNlcjpwdw==")]) is None
    assert presented_credential([(b"authorization", b"Bearer ")]) is None
    assert presented_credential([(b"x-api-key", b"")]) is None
    assert presented_credential([(b"accept", b"*/*")]) is None


@pytest.mark.parametrize(
    "headers",
    [
        [(b"x-api-key", b"real"), (b"x-api-key", b"junk-7")],
        [(b"x-api-key", b"real"), (b"authorization", b"Bearer t")],
        [(b"authorization", b"Bearer t"), (b"authorization", b"bearer u")],
        [(b"x-api-key", b""), (b"x-api-key", b"real")],
    ],
)
def test_more_than_one_credential_header_is_ambiguous(headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(AmbiguousCredentials, match="send one credential header"):
        presented_credential(headers)
