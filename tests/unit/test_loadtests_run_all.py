"""loadtests/run_all.py without running anything: every benchmark it starts is a module that exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.run_all import RUNS, Run

LOADTESTS = Path(__file__).resolve().parents[2] / "loadtests"


@pytest.mark.parametrize("bench", RUNS, ids=lambda bench: bench.name)
def test_every_run_names_a_runnable_module(bench: Run) -> None:
    module = LOADTESTS / f"{bench.module}.py"
    assert module.is_file(), f"{bench.name}: no loadtests/{bench.module}.py"
    assert 'if __name__ == "__main__":' in module.read_text()
