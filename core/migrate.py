"""Run the alembic migrations from code (``reminders up``, the tests)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode

if TYPE_CHECKING:
    from alembic.config import Config

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# alembic (and SQLAlchemy under it) is imported only where migrations run: a poller or an API
# process that merely checks the schema version starts without it, about 0.4 s sooner.
# libpq parameters asyncpg reads from a DSN but takes no keyword argument for.
_DSN_ONLY = frozenset(
    {"sslrootcert", "sslcert", "sslkey", "sslcrl", "sslpassword",
     "ssl_min_protocol_version", "ssl_max_protocol_version"}
)  # fmt: skip


def sqlalchemy_url(database_url: str) -> str:
    """Turn a libpq-style URL into one SQLAlchemy drives with asyncpg.

    SQLAlchemy's asyncpg dialect passes the query string to ``asyncpg.connect()`` as keyword
    arguments, where libpq's ``sslmode`` is spelled ``ssl`` (same values: ``require``,
    ``verify-full``...). The certificate files (``sslrootcert``...) have no keyword: when given,
    the whole URL also goes as ``dsn=``, which asyncpg parses as the API's pool does.
    """
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            rest, has_query, query = database_url[len(prefix) :].partition("?")
            if has_query:
                params = parse_qsl(query, keep_blank_values=True)
                kwargs = [("ssl" if k == "sslmode" else k, v) for k, v in params if k not in _DSN_ONLY]
                if len(kwargs) < len(params):
                    kwargs.append(("dsn", "postgresql://" + database_url[len(prefix) :]))
                rest += "?" + urlencode(kwargs)
            return "postgresql+asyncpg://" + rest
    raise ValueError(f"not a PostgreSQL URL: {database_url.split('://', 1)[0]}://...")


def alembic_config(database_url: str) -> Config:
    """An alembic config bound to this project's migrations and the given database."""
    from alembic.config import Config

    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision``; blocking (call it from a thread inside a loop)."""
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    """Revert migrations down to ``revision``; blocking."""
    from alembic import command

    command.downgrade(alembic_config(database_url), revision)
