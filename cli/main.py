"""The ``reminders`` console script."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from cli import keys, migrate, prune, rotate, status, tail
from cli.common import database_url, fail, load_settings, redis_url, service_env
from cli.services import StartupError, run_services
from cli.up import api_command, run_up
from core.crypto import PayloadCipher
from core.embedded import EmbeddedServerError
from core.exceptions import PayloadKeyError
from core.settings import Settings
from poller.main import main as run_poller

app = typer.Typer(
    help="Reminder Service: REST API, Postgres as the queue, events in Redis.",
    no_args_is_help=True,
    add_completion=False,
    # Markdown joins a docstring's lines into paragraphs, so help wraps to the terminal's width
    # rather than breaking where the source lines end.
    rich_markup_mode="markdown",
)
app.add_typer(keys.app, name="keys")
app.command("migrate")(migrate.migrate)
app.command("prune")(prune.prune_command)
app.command("rotate-payload-keys")(rotate.rotate_payload_keys)
app.command("status")(status.status)
app.command("tail")(tail.tail)


@app.command()
def up() -> None:
    """Start everything (what "make run" runs): servers, migrations, the API and the pollers.

    Embedded PostgreSQL and Redis are started under REMINDERS_DATA_DIR unless
    REMINDERS_DATABASE_URL / REMINDERS_REDIS_URL are set. Runs until Ctrl-C or SIGTERM.
    """
    try:
        code = run_up(Settings())
    except (StartupError, EmbeddedServerError) as error:
        fail(error)
    raise typer.Exit(code)


@app.command()
def services(
    pg_port: Annotated[
        int | None, typer.Option(metavar="PORT", help="PostgreSQL port (default: any free).")
    ] = None,
    redis_port: Annotated[
        int | None, typer.Option(metavar="PORT", help="Redis port (default: any free).")
    ] = None,
) -> None:
    """Start only embedded PostgreSQL and Redis (data under REMINDERS_DATA_DIR) until Ctrl-C.

    Prints "export REMINDERS_DATABASE_URL=..." and "export REMINDERS_REDIS_URL=..." on stdout.
    """
    try:
        run_services(Settings(), pg_port, redis_port, lambda line: typer.echo(line))
    except (StartupError, EmbeddedServerError) as error:
        fail(error)


@app.command()
def api() -> None:
    """Run only the API: uvicorn on REMINDERS_API_HOST:REMINDERS_API_PORT, HTTPS if TLS files are set.

    Needs REMINDERS_DATABASE_URL and REMINDERS_PAYLOAD_KEYS. Runs until Ctrl-C or SIGTERM.
    """
    settings = load_settings()
    database_url(settings)
    try:
        PayloadCipher.from_settings(settings)  # the API refuses to start without keys: say so here
    except PayloadKeyError as error:
        fail(error)
    argv = api_command(settings)  # the very command `up` starts, so both serve the API the same way
    # Replace this process rather than start a child: uvicorn then gets Ctrl-C and SIGTERM itself
    # and its exit code is ours, with nothing in between to forward them. Its app builds Settings
    # from the environment, so the URLs found in a running `up`'s file go there too.
    os.execve(argv[0], argv, {**os.environ, **service_env(settings)})


@app.command()
def poller() -> None:
    """Run one poller in the foreground (as "reminders up" runs each of its pollers) until Ctrl-C or SIGTERM.

    Needs REMINDERS_DATABASE_URL, REMINDERS_REDIS_URL and REMINDERS_PAYLOAD_KEYS.
    """
    settings = load_settings()
    database_url(settings)
    redis_url(settings)
    run_poller(settings)
