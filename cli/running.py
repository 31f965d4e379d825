"""What `reminders up` leaves in its data dir while it runs, so other processes on the machine find it.

``running.json`` holds the servers' URLs and the API's, and the paths of the key files `up` made
(only when it took its keys from them rather than from its environment). It never holds a secret:
the key files stay mode 0600, and a reader needs the right to read them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUNNING_FILE = "running.json"
_FIELDS = ("database_url", "redis_url", "api_url", "api_key_file", "payload_key_file")


@dataclass(frozen=True, slots=True)
class RunningStack:
    """Where the running `reminders up` is; a field is None when it did not say."""

    database_url: str | None = None
    redis_url: str | None = None
    api_url: str | None = None
    api_key_file: Path | None = None
    payload_key_file: Path | None = None

    def to_json(self) -> str:
        """The file's content: the fields that are set."""
        values = {name: getattr(self, name) for name in _FIELDS}
        return json.dumps({name: str(value) for name, value in values.items() if value is not None})

    def api_key(self) -> str | None:
        """The API key `up` made, or None when it took its key from its environment."""
        return _read_secret(self.api_key_file)

    def payload_keys(self) -> str | None:
        """The payload keys `up` made, or None when it took its keys from its environment."""
        return _read_secret(self.payload_key_file)


def read_running(data_dir: Path) -> RunningStack | None:
    """The `reminders up` running on ``data_dir``, or None when none has left its file there."""
    try:
        found = json.loads((data_dir / RUNNING_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict):
        return None
    values = {name: found[name] for name in _FIELDS if isinstance(found.get(name), str)}
    return RunningStack(
        database_url=values.get("database_url"),
        redis_url=values.get("redis_url"),
        api_url=values.get("api_url"),
        api_key_file=Path(values["api_key_file"]) if "api_key_file" in values else None,
        payload_key_file=Path(values["payload_key_file"]) if "payload_key_file" in values else None,
    )


def _read_secret(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


@dataclass(frozen=True, slots=True)
class AssistantConnection:
    """What an assistant (the examples) needs: the API, a key for it, and the Redis its events go to."""

    api_url: str
    api_key: str
    redis_url: str


class NoConnection(Exception):
    """Something an assistant needs is neither exported nor known from a running `reminders up`."""


def assistant_connection(
    api_url: str | None = None,
    api_key: str | None = None,
    redis_url: str | None = None,
    environ: Mapping[str, str] = os.environ,
) -> AssistantConnection:
    """The given values, else REMINDERS_API_URL / _API_KEY / _REDIS_URL, else those of the running
    `reminders up` (on REMINDERS_DATA_DIR, ``.data``); NoConnection names what is still missing."""
    running = read_running(Path(environ.get("REMINDERS_DATA_DIR") or ".data")) or RunningStack()
    api = api_url or environ.get("REMINDERS_API_URL") or running.api_url
    key = api_key or environ.get("REMINDERS_API_KEY") or running.api_key()
    queue = redis_url or environ.get("REMINDERS_REDIS_URL") or running.redis_url
    if not (api and key and queue):
        names = ("REMINDERS_API_URL", "REMINDERS_API_KEY", "REMINDERS_REDIS_URL")
        missing = [name for name, value in zip(names, (api, key, queue), strict=True) if not value]
        where = (
            "and the running `reminders up` was given it in its environment"
            if running != RunningStack()
            else "and no `reminders up` (`make run`) runs on this data dir"
        )
        raise NoConnection(
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set, {where}: "
            "start `make run`, or export what its banner prints"
        )
    return AssistantConnection(api, key, queue)


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """The --api-url, --api-key and --redis-url options every example takes."""
    for option, name in (("--api-url", "API_URL"), ("--api-key", "API_KEY"), ("--redis-url", "REDIS_URL")):
        parser.add_argument(option, help=f"default: REMINDERS_{name}, or the running `make run`'s")


def run_example(
    parser: argparse.ArgumentParser, main: Callable[[argparse.Namespace], Coroutine[Any, Any, int]]
) -> None:
    """Parse the command line, fill in the connection (exit 2 naming what is missing), and run
    ``main``; Ctrl-C ends it with 130 and one line, no traceback."""
    args = parser.parse_args()
    try:
        found = assistant_connection(args.api_url, args.api_key, args.redis_url)
    except NoConnection as error:
        parser.exit(2, f"error: {error}\n")
    args.api_url, args.api_key, args.redis_url = found.api_url, found.api_key, found.redis_url
    try:
        raise SystemExit(asyncio.run(main(args)))
    except KeyboardInterrupt:
        parser.exit(130, "interrupted\n")
