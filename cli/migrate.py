"""``reminders migrate``: bring the schema to a revision, and say what was done.

It upgrades. A revision older than the database's is refused unless ``--downgrade`` asks for it,
since reverting drops the tables and columns the newer migrations added, and their data.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import asyncpg
import typer

from cli.common import database_url, fail, load_settings
from core.migrate import alembic_config, downgrade, upgrade
from core.queries import queries

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory


def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(""))


def resolve(scripts: ScriptDirectory, revision: str) -> str | None:
    """The revision id ``revision`` names (``head``, ``base``: None, an id or its prefix); exit 2 if none."""
    from alembic.util import CommandError

    if revision == "base":
        return None
    try:
        found = scripts.get_revision(revision)
    except CommandError as error:
        found, reason = None, str(error).rstrip(".")
    else:
        reason = f"no such revision {revision!r}"
    if found is None:
        known = ", ".join(script.revision for script in reversed(list(scripts.walk_revisions())))
        fail(f"{reason}; the revisions are head, base and {known}", code=2)
    return found.revision


def lineage(scripts: ScriptDirectory, revision: str | None) -> set[str | None]:
    """``revision`` and every revision under it, down to base (None)."""
    if revision is None:
        return {None}
    return {script.revision for script in scripts.iterate_revisions(revision, "base")} | {None}


async def _current(url: str) -> str | None:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(queries["schema_versions"])
    except asyncpg.UndefinedTableError:
        return None  # never migrated
    finally:
        await conn.close()
    if len(rows) > 1:
        fail(f"the database records several revisions ({', '.join(r[0] for r in rows)}); fix it by hand")
    return rows[0][0] if rows else None


def _name(revision: str | None, head: str | None) -> str:
    if revision is None:
        return "base (no schema)"
    return f"{revision} (head)" if revision == head else revision


def migrate(
    revision: Annotated[
        str, typer.Argument(metavar="REVISION", help="head, base or a revision id such as 0004.")
    ] = "head",
    to_older: Annotated[
        bool,
        typer.Option(
            "--downgrade",
            help="Revert to an older REVISION: drops what the newer migrations added, with its data.",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Downgrade without asking.")] = False,
) -> None:
    """Upgrade the database (REMINDERS_DATABASE_URL) to REVISION, by default the newest one.

    Says which revision the database was at and is at now. A REVISION older than the database's is
    refused unless --downgrade is given (it asks first, unless --yes): back up the database before.
    """
    scripts = _scripts()
    target = resolve(scripts, revision)
    head = scripts.get_current_head()
    url = database_url(load_settings())
    try:
        current = asyncio.run(_current(url))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        fail(f"cannot read the database's revision: {error!r}")
    if current is not None and current not in lineage(scripts, head):
        fail(f"the database is at {current}, a revision this release does not know (a newer release?)")
    if current == target:
        typer.echo(f"database already at {_name(target, head)}; nothing to do", err=True)
        return
    older = target in lineage(scripts, current)
    if older and not to_older:
        fail(
            f"the database is at {_name(current, head)}, newer than {_name(target, head)}, and `migrate` "
            f"only upgrades: nothing done. To revert (dropping what the newer migrations added, with "
            f"its data), back up the database and run `reminders migrate {revision} --downgrade`"
        )
    if to_older and not older:
        fail(f"{_name(target, head)} is not older than the database's {_name(current, head)}: nothing done")
    if older and not yes:
        typer.confirm(
            f"Downgrade from {_name(current, head)} to {_name(target, head)}, dropping what the newer "
            "migrations added and its data?",
            abort=True,
            err=True,
        )
    _apply(url, target, older)
    verb = "downgraded" if older else "upgraded"
    typer.echo(f"database {verb} from {_name(current, head)} to {_name(target, head)}", err=True)


def _apply(url: str, target: str | None, older: bool) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    try:
        if older:
            downgrade(url, target or "base")
        else:
            upgrade(url, target or "head")
    except (OSError, SQLAlchemyError) as error:
        fail(f"the migration failed: {error}")
