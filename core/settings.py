"""Every knob of the service, read once from ``REMINDERS_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Service settings; build one per process and pass it down."""

    model_config = SettingsConfigDict(env_prefix="REMINDERS_", extra="ignore")

    # Services. Unset URLs mean "start the embedded ones" (only `reminders up` and the tests do).
    database_url: str | None = None
    redis_url: str | None = None
    data_dir: Path = Path(".data")

    # API
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_url: str | None = None
    # uvicorn worker processes. More than 1 uses more cores, but the rate limit and the metrics
    # are per process: each worker allows rate_limit_per_second, and /metrics shows one worker.
    api_workers: int = Field(default=1, ge=1, le=64)
    bootstrap_api_key: SecretStr | None = None
    # Comma-separated. "secret" acts for every assistant; "secret@uuid[;uuid]" only for those.
    # Keys created with `reminders keys create` live in the database instead (hashed).
    api_keys: str = ""
    # Comma-separated keys in Fernet's format (core/crypto.py derives AES-GCM keys from them): the
    # first encrypts payloads, all of them decrypt (rotation).
    payload_keys: SecretStr | None = None

    # JWT bearer tokens. The accepted algorithms come from here, never from the token.
    jwt_algorithms: str = "HS256"
    jwt_secret: SecretStr | None = None  # for HS256/384/512
    jwt_public_key: str | None = None  # PEM, for RS*/ES*/PS*
    jwt_audience: str = "reminder-service"
    jwt_issuer: str | None = None
    jwt_leeway_seconds: float = Field(default=30.0, ge=0, le=300)

    # Live (pending, active, paused) reminders one assistant may have; 0 means no cap.
    max_live_reminders_per_assistant: int = Field(default=100_000, ge=0)

    # Database pool: bounded, and acquiring times out so callers get a 503 rather than a hang.
    db_pool_min: int = Field(default=1, ge=0)
    db_pool_max: int = Field(default=10, ge=1)
    db_acquire_timeout: float = Field(default=5.0, gt=0)
    db_statement_timeout_ms: int = Field(default=30_000, ge=0)
    db_idle_in_transaction_timeout_ms: int = Field(default=10_000, ge=0)
    # A process started while the database does not answer waits for it: the first retry after
    # db_connect_retry_initial seconds, doubling up to db_connect_retry_max_delay (with jitter).
    db_connect_retry_initial: float = Field(default=0.5, gt=0)
    db_connect_retry_max_delay: float = Field(default=10.0, gt=0)

    # TLS: the API serves HTTPS when given both a certificate and its key (PEM files).
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    # CA bundle the pollers trust when REMINDERS_API_URL is https with a private CA.
    api_ca_file: Path | None = None

    # Limits (OWASP API4). The rate limit is per credential and per API process; 0 turns it off.
    max_body_bytes: int = Field(default=128 * 1024, ge=1)
    rate_limit_per_second: float = Field(default=200.0, ge=0)
    rate_limit_burst: int = Field(default=400, ge=0)
    # Requests with no valid credential (missing, unknown or expired), per client address: enough
    # for a client fixing its configuration, too little to make key guessing or costly 401s pay.
    unauthenticated_rate_limit_per_second: float = Field(default=2.0, ge=0)
    unauthenticated_rate_limit_burst: int = Field(default=20, ge=0)
    # A request's head (request line and headers) larger than this is a 431; one not complete this
    # many seconds after the connection or its first byte is dropped (api/http_protocol.py); an idle
    # keep-alive connection is closed after keep_alive_timeout (uvicorn's --timeout-keep-alive).
    max_header_bytes: int = Field(default=32 * 1024, ge=1024, le=1024 * 1024)
    header_timeout: float = Field(default=10.0, gt=0, le=300)
    keep_alive_timeout: int = Field(default=5, ge=1, le=300)

    # Poller
    pollers: int = Field(default=2, ge=0)
    poll_interval: float = Field(default=1.0, gt=0)
    sync_interval: float = Field(default=60.0, gt=0)
    sync_max_retries: int = Field(default=5, ge=0)
    # Per-batch costs (round trips, commits, the push script) dominate small batches: 2,000 fires a
    # burst about 25% faster than 500 here, and a claim still holds its row locks only ~0.1 s.
    batch_size: int = Field(default=2000, ge=1, le=10_000)
    # Claims a poller runs at once while draining a backlog (each its own transaction and batch).
    claim_lanes: int = Field(default=2, ge=1, le=16)
    sweep_after: float = Field(default=5.0, ge=0)
    event_marker_ttl: int = Field(default=2 * 24 * 3600, ge=60)
    redis_retry_max_delay: float = Field(default=10.0, gt=0)
    # Redelivery: a sent event with no ack after ack_timeout * 2**(attempt-1) (+ up to 20 % jitter)
    # is pushed again with attempt + 1; after max_attempts it is dead-lettered.
    ack_timeout: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=5, ge=1)

    # Retention, applied by `reminders prune` (run it daily) or by the pollers. Days a finished
    # delivery (acked, sent with no ack due, stopped, or dead-lettered) is kept; 0 keeps them for ever.
    delivery_retention_days: int = Field(default=30, ge=0)
    # Days an audit log entry is kept; 0 (the default) keeps the log whole (append-only, docs/design.md).
    audit_retention_days: int = Field(default=0, ge=0)
    # Hours between the retention runs the pollers make themselves (one at a time); 0 leaves
    # retention to `reminders prune`.
    prune_interval_hours: float = Field(default=0.0, ge=0)

    # Observability. Each poller serves /metrics, /healthz and /readyz on metrics_host:metrics_port
    # (0 turns that server off); `reminders up` gives its i-th poller metrics_port + i.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9100, ge=0, le=65535)
    # Seconds between refreshes of the state gauges (counts over whole tables, so not every
    # scrape); 0 turns the refresh off in this process.
    stats_interval: float = Field(default=15.0, ge=0)
    # How long /readyz waits for the database or Redis before calling it not ready.
    readiness_timeout: float = Field(default=2.0, gt=0)

    log_level: str = "INFO"
    log_format: Literal["json", "console", "auto"] = "auto"

    @field_validator("database_url", "redis_url", "api_url", "payload_keys", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("tls_certfile", "tls_keyfile", "api_ca_file", mode="before")
    @classmethod
    def _blank_path_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            given, missing = (
                ("REMINDERS_TLS_CERTFILE", "REMINDERS_TLS_KEYFILE")
                if self.tls_keyfile is None
                else ("REMINDERS_TLS_KEYFILE", "REMINDERS_TLS_CERTFILE")
            )
            raise ValueError(f"{given} is set but {missing} is not: HTTPS needs both or neither")
        return self

    def require_database_url(self) -> str:
        """The database URL, or a clear error for processes that cannot start one themselves."""
        if not self.database_url:
            raise RuntimeError("REMINDERS_DATABASE_URL is not set (or start everything with `make run`)")
        return self.database_url

    def require_redis_url(self) -> str:
        """The Redis URL, or a clear error for processes that cannot start one themselves."""
        if not self.redis_url:
            raise RuntimeError("REMINDERS_REDIS_URL is not set (or start everything with `make run`)")
        return self.redis_url

    def resolved_api_url(self) -> str:
        """Where pollers reach the REST API."""
        scheme = "https" if self.tls_certfile else "http"
        return self.api_url or f"{scheme}://{self.api_host}:{self.api_port}"
