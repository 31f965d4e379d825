"""Real PostgreSQL and Redis servers from PyPI wheels, for `reminders up` and the tests.

Both listen on 127.0.0.1 TCP ports, keep their data in a directory so restarts keep it, and work
as root (Postgres then runs as a dedicated system user) or as a normal user.
"""

from core.embedded._common import EmbeddedServerError, port_is_free
from core.embedded.postgres import (
    EmbeddedPostgres,
    ensure_database,
    ensure_database_async,
    start_postgres,
)
from core.embedded.redis import EmbeddedRedis, start_redis

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "EmbeddedServerError",
    "ensure_database",
    "ensure_database_async",
    "port_is_free",
    "start_postgres",
    "start_redis",
]
