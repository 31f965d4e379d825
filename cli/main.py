"""The ``reminders`` console script."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import keys, rotate
from cli.services import StartupError, run_services
from cli.up import run_up
from core.embedded import EmbeddedServerError
from core.migrate import upgrade
from core.settings import Settings

app = typer.Typer(
    help="Reminder Service: REST API, Postgres as the queue, events in Redis.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(keys.app, name="keys")
app.command("rotate-payload-keys")(rotate.rotate_payload_keys)


def _fail(error: Exception) -> typer.Exit:
    typer.echo(f"error: {error}", err=True)
    return typer.Exit(1)


@app.command()
def up() -> None:
    """Start everything (what `make run` runs): servers, migrations, the API and the pollers.

    Embedded PostgreSQL and Redis are started under REMINDERS_DATA_DIR unless
    REMINDERS_DATABASE_URL / REMINDERS_REDIS_URL are set. Runs until Ctrl-C or SIGTERM.
    """
    try:
        code = run_up(Settings())
    except (StartupError, EmbeddedServerError) as error:
        raise _fail(error) from None
    raise typer.Exit(code)


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply the alembic migrations to REMINDERS_DATABASE_URL."""
    try:
        database_url = Settings().require_database_url()
    except RuntimeError as error:
        raise _fail(error) from None
    upgrade(database_url, revision)
    typer.echo(f"database at {revision}", err=True)


@app.command()
def services(
    pg_port: Annotated[int | None, typer.Option(help="PostgreSQL port (default: any free).")] = None,
    redis_port: Annotated[int | None, typer.Option(help="Redis port (default: any free).")] = None,
) -> None:
    """Start only embedded PostgreSQL and Redis (data under REMINDERS_DATA_DIR) until Ctrl-C.

    Prints `export REMINDERS_DATABASE_URL=...` and `export REMINDERS_REDIS_URL=...` on stdout.
    """
    try:
        run_services(Settings(), pg_port, redis_port, lambda line: typer.echo(line))
    except (StartupError, EmbeddedServerError) as error:
        raise _fail(error) from None
