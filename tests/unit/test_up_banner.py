"""`reminders up`'s banner warns of each poller that will run without its metrics port."""

from __future__ import annotations

import socket

from cli.services import Services
from cli.up import banner, taken_metrics_ports
from core.settings import Settings

SERVICES = Services("postgresql://db/reminders", "redis://cache:6379/0", False, False)


def _two_free_ports() -> int:
    """A base port such that base and base + 1 are free now."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base: int = probe.getsockname()[1]
        try:
            with socket.socket() as second:
                second.bind(("127.0.0.1", base + 1))
        except OSError:
            continue
        return base


def test_only_the_poller_whose_port_is_taken_is_named() -> None:
    base = _two_free_ports()
    settings = Settings(pollers=2, metrics_port=base)
    assert taken_metrics_ports(settings) == []
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", base + 1))
        holder.listen()
        (warning,) = taken_metrics_ports(settings)
    assert warning.startswith(f"port {base + 1} on 127.0.0.1 is taken: poller-2 fires, but without")
    assert taken_metrics_ports(Settings(pollers=2, metrics_port=0)) == []  # no metrics asked for


def test_the_banner_says_ready_but_and_lists_the_warnings() -> None:
    settings = Settings(pollers=2, metrics_port=9100)
    quiet = banner(settings, SERVICES, "rmd_key", "http://127.0.0.1:8000").splitlines()
    assert "Reminder Service is ready" in quiet and not any("warning" in line for line in quiet)
    assert "  Pollers    2  (metrics on 127.0.0.1:9100-9101)" in quiet
    loud = banner(settings, SERVICES, "rmd_key", "http://127.0.0.1:8000", ["port 9101 ... taken"])
    assert "Reminder Service is ready, but:\n  warning: port 9101 ... taken\n" in loud
