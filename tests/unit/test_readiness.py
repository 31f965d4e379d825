"""The migration heads /readyz compares the database with, read without alembic."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory

from core.migrate import PROJECT_ROOT
from core.readiness import migration_heads


def test_heads_match_alembics_own_reading_of_the_scripts() -> None:
    expected = ScriptDirectory(str(PROJECT_ROOT / "migrations")).get_heads()
    assert migration_heads() == frozenset(expected)
    assert len(expected) == 1


def test_a_branch_has_two_heads_and_a_merge_one(tmp_path: Path) -> None:
    def script(name: str, revision: str, down: str) -> None:
        text = f'"""{name}."""\nrevision = "{revision}"\ndown_revision = {down}\n'
        (tmp_path / f"{name}.py").write_text(text)

    script("a", "a", "None")
    script("b", "b", '"a"')
    script("c", "c", '"a"')
    assert migration_heads(tmp_path) == {"b", "c"}
    script("d", "d", '("b", "c")')
    assert migration_heads(tmp_path) == {"d"}


def test_annotated_assignments_count_too(tmp_path: Path) -> None:
    (tmp_path / "x.py").write_text('revision: str = "x"\ndown_revision: str | None = None\n')
    assert migration_heads(tmp_path) == {"x"}
