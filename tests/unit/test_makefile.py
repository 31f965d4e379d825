"""The Makefile: `make run` installs the service alone, the checks add the dev tools."""

from __future__ import annotations

import re

from tests.conftest import PROJECT_ROOT

MAKEFILE = (PROJECT_ROOT / "Makefile").read_text()


def _recipe(target: str) -> tuple[str, str]:
    """A rule's prerequisites and its recipe lines."""
    match = re.search(rf"^{re.escape(target)}:([^\n]*)\n((?:\t[^\n]*\n|\n(?=\t))*)", MAKEFILE, re.MULTILINE)
    assert match is not None, target
    return match.group(1).strip(), match.group(2)


def test_run_installs_the_service_without_the_dev_tools() -> None:
    prerequisites, _ = _recipe("run")
    assert prerequisites == "$(STAMP)"
    _, install = _recipe("$(STAMP)")
    assert "pip install -e .\n" in install and "[dev]" not in install


def test_every_check_has_the_dev_tools() -> None:
    _, install = _recipe("$(DEV_STAMP)")
    assert "pip install -e '.[dev]'" in install
    for target in ("lint", "typecheck", "pytest", "bench"):
        assert _recipe(target)[0] == "$(DEV_STAMP)", target


def test_lint_checks_the_format_too() -> None:
    _, recipe = _recipe("lint")
    assert "ruff check ." in recipe and "ruff format --check ." in recipe
