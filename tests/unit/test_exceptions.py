"""The project's exception tree (core/exceptions.py): every error of the service is a ReminderError."""

from __future__ import annotations

import pytest

from core import exceptions
from core.exceptions import InvalidSchedule, ReminderError, UnknownZone


def test_every_exception_class_of_the_module_is_in_the_tree() -> None:
    classes = [v for v in vars(exceptions).values() if isinstance(v, type) and issubclass(v, BaseException)]
    assert classes and all(issubclass(c, ReminderError) for c in classes), classes


@pytest.mark.parametrize("error", [InvalidSchedule, UnknownZone])
def test_a_schedule_error_is_also_a_value_error_for_pydantic(error: type[Exception]) -> None:
    assert issubclass(error, ValueError)
