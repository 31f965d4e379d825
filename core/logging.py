"""Structured logging: JSON lines for machines, readable lines in a terminal."""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Any, Literal

import structlog


def _access_log_fields(
    _logger: object, _method_name: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """uvicorn's access line as fields (client, method, path, status) instead of one string."""
    record = event_dict.get("_record")
    args = event_dict.pop("positional_args", None)  # only foreign (standard library) records carry it
    if isinstance(record, logging.LogRecord) and record.name == "uvicorn.access":
        if isinstance(args, tuple) and len(args) == 5:
            client, method, path, _version, status = args
            event_dict.update(event="http_request", client=client, method=method, path=path, status=status)
    return event_dict


def _exception_of(exc_info: Any) -> BaseException | None:
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple):
        return exc_info[1] if len(exc_info) == 3 else None
    return sys.exc_info()[1] if exc_info else None


def traceback_without_messages(exc: BaseException) -> str:
    """The traceback of ``exc`` and of its causes, each exception by its type only.

    An exception's message may quote the input that caused it (``UnicodeEncodeError`` quotes
    the whole string, pydantic the value), and the input may be a payload or a request body:
    the frames and the types locate the bug; the values stay out of the logs.
    """
    chain: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = "".join(traceback.format_tb(current.__traceback__))
        name = f"{type(current).__module__}.{type(current).__qualname__}"
        chain.append(f"Traceback (most recent call last):\n{frames}{name} (message not logged)")
        cause = current.__cause__
        current = cause if cause is not None or current.__suppress_context__ else current.__context__
    return "\n\nwhich was raised while handling:\n\n".join(chain)


def _exception_without_messages(
    _logger: object, _method_name: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """``exc_info`` (structlog's or a standard library record's) as ``exception``: see above.

    Replaces structlog's ``format_exc_info``, and runs before any renderer, so that neither the
    JSON renderer nor the console one (rich, which would also print local variables) sees it.
    """
    exc = _exception_of(event_dict.pop("exc_info", None))
    if exc is not None:
        event_dict["exception"] = traceback_without_messages(exc)
    return event_dict


def renders_json(fmt: Literal["json", "console", "auto"]) -> bool:
    """Whether lines are JSON: asked for, or ``auto`` with stderr not a terminal."""
    return fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())


def configure_logging(level: str = "INFO", fmt: Literal["json", "console", "auto"] = "auto") -> None:
    """Route structlog and the standard library through one renderer on stderr."""
    use_json = renders_json(fmt)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _access_log_fields,
        _exception_without_messages,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=shared,
            pass_foreign_args=True,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn installs its own plain-text handlers before it builds the app; hand its records
    # (startup, errors, the access log) to ours so every line is in the same format.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # Their per-tick and per-request chatter would drown the service's own events.
    for noisy in ("apscheduler", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # A poll that drains a backlog outlives its interval on purpose; APScheduler warns about the
    # skipped ticks every second, which says nothing an operator needs.
    logging.getLogger("apscheduler.scheduler").setLevel(max(logging.ERROR, root.level))
