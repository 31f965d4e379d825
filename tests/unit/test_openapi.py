"""The OpenAPI document as a generated client sees it: every operation generated, nothing dubious.

``openapi-python-client generate`` runs on the document ``create_app`` serves (built without any
server) into a temporary directory; a warning, or an operation left out, fails the test, and the
generated package must import.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from api.app import create_app
from core.settings import Settings
from tests.conftest import TEST_API_KEY
from tests.factories import TEST_PAYLOAD_KEY

PACKAGE = "reminder_service_client"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def document() -> dict[str, Any]:
    """The app's OpenAPI document; building the app opens no connection."""
    settings = Settings(
        database_url="postgresql://unused/unused",
        redis_url="redis://unused",
        bootstrap_api_key=TEST_API_KEY,
        payload_keys=TEST_PAYLOAD_KEY,
        log_format="json",
        log_level="WARNING",
    )
    return create_app(settings).openapi()


def _operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return document()


@pytest.fixture(scope="module")
def generated(schema: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The generator's output directory and everything it printed."""
    root = tmp_path_factory.mktemp("generated")
    (root / "openapi.json").write_text(json.dumps(schema))
    # No post hooks: they run ruff on the output, which says nothing about the document.
    (root / "config.json").write_text(json.dumps({"post_hooks": []}))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [str(Path(sys.executable).parent / "openapi-python-client"), "generate", "--meta", "setup"]
    command += ["--path", str(root / "openapi.json"), "--output-path", str(root / "client")]
    command += ["--config", str(root / "config.json")]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env,
        timeout=100,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return root / "client", output


def test_the_generator_warns_of_nothing(generated: tuple[Path, str]) -> None:
    _, output = generated
    assert not re.search(r"warning|will not be generated|unable to process", output, re.IGNORECASE), output


def test_every_operation_is_generated_and_imports(
    schema: dict[str, Any], generated: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, _ = generated
    monkeypatch.syspath_prepend(str(directory))
    importlib.import_module(PACKAGE)
    for _, path, operation in _operations(schema):
        tag = operation["tags"][0]
        module = importlib.import_module(f"{PACKAGE}.api.{tag}.{operation['operationId']}")
        for function in ("sync_detailed", "asyncio_detailed"):
            assert callable(getattr(module, function, None)), f"{path}: no {function}"
    importlib.import_module(f"{PACKAGE}.models").ReminderEvent  # noqa: B018 - the event is a model too
    for name in list(sys.modules):
        if name == PACKAGE or name.startswith(f"{PACKAGE}."):
            del sys.modules[name]


def test_operation_ids_are_verbs_in_snake_case(schema: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in _operations(schema)]
    assert len(ids) == len(set(ids))
    for operation_id in ids:
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", operation_id), operation_id
    assert schema["paths"]["/reminders/{reminder_id}"]["patch"]["operationId"] == "update_reminder"


def test_trigger_in_is_a_duration_or_seconds(schema: dict[str, Any]) -> None:
    for model, field in (("ReminderCreate", "trigger_in"), ("Snooze", "for")):
        declared = schema["components"]["schemas"][model]["properties"][field]
        branches = [b for outer in declared["anyOf"] for b in outer.get("anyOf", [outer])]
        assert {b.get("type") for b in branches} == {"string", "number", "null"}, declared


def test_headers_the_api_sends_are_declared(schema: dict[str, Any]) -> None:
    create = schema["paths"]["/reminders/"]["post"]["responses"]
    assert create["200"]["headers"]["Idempotent-Replayed"]["required"] is True
    for method, path, operation in _operations(schema):
        for code, response in operation["responses"].items():
            headers = response.get("headers", {})
            if code in ("429", "503"):
                assert "Retry-After" in headers, f"{method} {path} {code}"
            if code not in ("413", "429"):
                assert "X-Request-ID" in headers, f"{method} {path} {code}"


def test_remind_me_in_2_hours_is_relative(schema: dict[str, Any]) -> None:
    body = schema["paths"]["/reminders/"]["post"]["requestBody"]["content"]["application/json"]
    example = body["examples"]["remind_in_2_hours"]["value"]
    assert example["trigger_in"] == "PT2H"
    assert "trigger_at" not in example


def _examples(schema: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(where, schema $ref, example) for each example of a component or of a request body."""
    for name, component in schema["components"]["schemas"].items():
        for example in component.get("examples", []):
            yield name, f"#/components/schemas/{name}", example
    operations = [*_operations(schema)]
    operations += [
        (m, f"webhook {n}", op) for n, item in schema.get("webhooks", {}).items() for m, op in item.items()
    ]
    for method, path, operation in operations:
        content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        for key, example in content.get("examples", {}).items():
            yield f"{method} {path} {key}", content["schema"]["$ref"], example["value"]


def test_every_example_is_valid(schema: dict[str, Any]) -> None:
    seen = set()
    for where, ref, example in _examples(schema):
        validator = jsonschema_rs.validator_for(
            {"$ref": ref, "components": schema["components"]}, validate_formats=True
        )
        errors = [error.message for error in validator.iter_errors(example)]
        assert not errors, f"{where}: {errors}"
        seen.add(ref.rsplit("/", 1)[1])
    # Every answer a client reads most has a realistic example, not the UI's placeholders.
    assert {"Reminder", "ReminderPage", "AckResult", "Preview", "History", "ReminderEvent"} <= seen
