"""Prometheus metrics of the API and the pollers, defined once so both name them alike.

One ``Metrics`` per process, passed to what updates it (no module-level registry: tests and
embedded runs each get their own). Counters and histograms are updated where things happen; the
gauges of shared state (reminders by status, backlog, queue lengths, deliveries by state) are set
by a cheap periodic count, not at scrape time.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Fire lag spans milliseconds (idle, on the dot) to minutes (a backlog after an outage).
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_BUCKETS = (0, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """Every metric the service exports, on one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        # Shared state, from the periodic count.
        self.reminders = Gauge(
            "reminders_reminders", "Reminders by status and type.", ["status", "type"], registry=r
        )
        self.due_backlog = Gauge("reminders_due_backlog", "Reminders due now, not yet claimed.", registry=r)
        self.oldest_due_age = Gauge(
            "reminders_oldest_due_age_seconds",
            "How long the oldest due, unclaimed occurrence has waited (0 when none).",
            registry=r,
        )
        self.queue_length = Gauge("reminders_queue_length", "Length of a Redis list.", ["queue"], registry=r)
        self.deliveries = Gauge("reminders_deliveries", "Deliveries by state.", ["state"], registry=r)
        self.table_bytes = Gauge(
            "reminders_table_bytes", "Bytes on disk of a table, indexes included.", ["table"], registry=r
        )
        self.pollers_seen = Gauge(
            "reminders_pollers_seen", "Pollers with a heartbeat in the last 30 seconds.", registry=r
        )
        # What this process did.
        self.fire_lag = Histogram(
            "reminders_fire_lag_seconds",
            "Seconds from an occurrence's scheduled time to its first push to Redis.",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.fires = Counter(
            "reminders_fires", "Occurrences pushed to Redis (first attempt).", ["type"], registry=r
        )
        self.redeliveries = Counter(
            "reminders_redeliveries", "Unacknowledged events pushed again.", registry=r
        )
        self.dead_letters = Counter(
            "reminders_dead_letters", "Events given up on, moved to the dead-letter list.", registry=r
        )
        self.quarantined = Counter(
            "reminders_quarantined",
            "Reminders a poller set aside (status quarantined): it could not plan or decrypt them.",
            ["reason"],
            registry=r,
        )
        self.errors = Counter(
            "reminders_errors", "Errors by component and kind.", ["component", "kind"], registry=r
        )
        self.poll_duration = Histogram(
            "reminders_poll_duration_seconds",
            "Duration of one claim-and-push round of a poller.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "reminders_claim_batch_size", "Rows locked by one claim.", buckets=BATCH_BUCKETS, registry=r
        )
        self.http_latency = Histogram(
            "reminders_http_request_duration_seconds",
            "API request latency by method, route template and status code.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric (serve with ``CONTENT_TYPE``)."""
        return generate_latest(self.registry)
