"""Every integer and boolean field of every request body takes only its own JSON type: pure, no I/O.

Lax validation read ``true`` as 1, ``"7"`` as 7 and ``"off"`` as false (issue 17, defect 10).
The fields are found by looking at the models, so a field added later is covered too.
"""

from __future__ import annotations

import types
import typing
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from api.schemas import Ack, DstPolicy, ReminderCreate, ReminderUpdate, Snooze
from core import jsontext

BODIES: tuple[type[BaseModel], ...] = (ReminderCreate, ReminderUpdate, Snooze, Ack, DstPolicy)
NOT_INTEGERS = [True, False, "12", "0", 3.0, "1e3"]
NOT_BOOLEANS = [1, 0, "true", "false", "no", "on", "1"]


def _types(annotation: Any) -> set[Any]:
    """The classes an annotation admits (through Annotated, Optional and unions)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _types(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_types(arg) for arg in typing.get_args(annotation)))
    return {annotation}


def _fields_of(kind: type) -> list[tuple[type[BaseModel], str]]:
    return [
        (model, name)
        for model in BODIES
        for name, info in model.model_fields.items()
        if kind in _types(info.annotation)
    ]


INTEGER_FIELDS = _fields_of(int)
BOOLEAN_FIELDS = _fields_of(bool)


def test_the_fields_are_found() -> None:
    assert {(m.__name__, n) for m, n in INTEGER_FIELDS} == {
        ("ReminderCreate", "user_id"),
        ("ReminderCreate", "misfire_grace_seconds"),
        ("ReminderCreate", "max_runs"),
        ("ReminderUpdate", "misfire_grace_seconds"),
        ("ReminderUpdate", "max_runs"),
    }
    assert {(m.__name__, n) for m, n in BOOLEAN_FIELDS} == {
        ("ReminderCreate", "ack_required"),
        ("ReminderUpdate", "ack_required"),
    }


def _locations(model: type[BaseModel], name: str, value: object) -> list[tuple[str | int, ...]]:
    alias = model.model_fields[name].alias or name
    with pytest.raises(ValidationError) as info:
        model.model_validate({alias: value})
    return [error["loc"] for error in info.value.errors()]


@pytest.mark.parametrize(("model", "name"), INTEGER_FIELDS)
@pytest.mark.parametrize("value", NOT_INTEGERS)
def test_an_integer_field_refuses_every_other_json_type(
    model: type[BaseModel], name: str, value: object
) -> None:
    assert (name,) in _locations(model, name, value)


@pytest.mark.parametrize(("model", "name"), BOOLEAN_FIELDS)
@pytest.mark.parametrize("value", NOT_BOOLEANS)
def test_a_boolean_field_refuses_every_other_json_type(
    model: type[BaseModel], name: str, value: object
) -> None:
    assert (name,) in _locations(model, name, value)


def test_what_the_json_parser_gives_for_a_float_is_no_integer() -> None:
    """A lossless float (1.00000000000000000001 keeps its text) is still not an integer."""
    value = jsontext.loads("5.00000000000000000001")
    assert ("misfire_grace_seconds",) in _locations(ReminderUpdate, "misfire_grace_seconds", value)


@pytest.mark.parametrize("model", [ReminderCreate, Snooze])
def test_a_duration_is_not_a_boolean(model: type[BaseModel]) -> None:
    name = "trigger_in" if model is ReminderCreate else "for"
    field = "trigger_in" if model is ReminderCreate else "for_"
    with pytest.raises(ValidationError) as info:
        model.model_validate({name: True})
    assert any(e["loc"] in ((name,), (field,)) for e in info.value.errors())


def test_what_the_schema_says_may_be_a_number_still_is() -> None:
    assert Snooze.model_validate({"for": 900}).for_ == timedelta(minutes=15)
    assert ReminderUpdate.model_validate({"trigger_at": 1_900_000_000}).trigger_at is not None
    assert ReminderUpdate.model_validate({"trigger_at": "1900000000"}).trigger_at is not None
    change = ReminderUpdate.model_validate({"ack_required": False, "max_runs": 4, "misfire_grace_seconds": 0})
    assert (change.ack_required, change.max_runs, change.misfire_grace_seconds) == (False, 4, 0)
