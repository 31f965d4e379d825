"""loadtests/api_bench.py without servers: locust stats, /proc parsing, the verdict, the API command."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cli.up import api_command
from core.settings import Settings
from loadtests import api_bench, procstat

STATS_CSV = """\
Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,\
Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,\
99.99%,100%
POST,POST /reminders/ one_time,2000,0,12,14.1,2,90,700,66.6,0.0,12,15,17,19,24,30,38,45,80,90,90
POST,POST /reminders/ recurring,1000,1,13,15.2,3,95,720,33.3,0.03,13,16,18,20,25,31,40,47,85,95,95
,Aggregated,3000,1,12,14.5,2,95,707,99.9,0.03,12,15,17,19,24,30,39,46,82,95,95
"""


def test_parse_locust_stats_reads_the_aggregated_row() -> None:
    stats = api_bench.parse_locust_stats(STATS_CSV)
    assert stats == api_bench.LocustStats(requests=3000, failures=1, rps=99.9, p50_ms=12.0, p99_ms=46.0)


def test_parse_locust_stats_takes_na_as_zero_and_needs_the_aggregated_row() -> None:
    empty = (
        STATS_CSV.splitlines()[0]
        + "\n,Aggregated,0,0,0,0,0,0,0,0.0,0.0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A\n"
    )
    assert api_bench.parse_locust_stats(empty) == api_bench.LocustStats(0, 0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="Aggregated"):
        api_bench.parse_locust_stats(STATS_CSV.splitlines()[0] + "\n")


def test_verdict_meets_the_target_only_when_every_number_does() -> None:
    good = api_bench.LocustStats(requests=90_000, failures=0, rps=3000.0, p50_ms=8.0, p99_ms=40.0)
    line = api_bench.verdict("api_create", good, 120.0, {"users": 32})
    assert line["met"] and line["users"] == 32
    assert line["target"] == {"rps": 2500, "p99_ms": 50, "rss_mb": 200}
    assert not api_bench.verdict("api_get", good, 120.0)["met"]  # 4,000/s for reads
    assert not api_bench.verdict("api_create", good, 250.0)["met"]
    for worse in (
        api_bench.LocustStats(90_000, 1, 3000.0, 8.0, 40.0),
        api_bench.LocustStats(90_000, 0, 3000.0, 8.0, 60.0),
        api_bench.LocustStats(0, 0, 0.0, 0.0, 0.0),
    ):
        assert not api_bench.verdict("api_create", worse, 120.0)["met"]


def test_proc_parsing() -> None:
    assert api_bench.parse_vmrss_mb("Name:\tpython\nVmRSS:\t  204800 kB\n") == 200.0
    assert api_bench.parse_vmrss_mb("Name:\tpython\nState:\tZ (zombie)\n") is None
    # The command name may hold spaces and parentheses; utime and stime are fields 14 and 15.
    stat = "42 (odd (name) x) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 5 0 0"
    assert procstat.parse_cpu_ticks(stat) == 300
    own = api_bench.rss_mb(os.getpid())
    assert own is not None and own > 1
    assert procstat.cpu_seconds(os.getpid()) > 0


def test_parse_args_defaults_and_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REMINDERS_DATABASE_URL", raising=False)
    monkeypatch.setenv("REMINDERS_API_WORKERS", "2")
    options = api_bench.parse_args(["--duration", "5", "--users", "8", "--processes", "1"])
    assert (options.duration, options.users, options.processes, options.workers) == (5, 8, 1, 2)
    assert options.database_url is None
    assert options.data_dir != Path(".data/bench")  # never burst.py's servers
    with pytest.raises(SystemExit):
        api_bench.parse_args(["--users", "0"])


def test_api_command_names_uvloop_httptools_and_the_workers() -> None:
    argv = api_command(Settings(_env_file=None, api_workers=1))
    assert argv[argv.index("--loop") + 1] == "uvloop"
    # httptools, with the head cap and deadline of api/http_protocol.py
    assert argv[argv.index("--http") + 1] == "api.http_protocol:HttpToolsProtocol"
    assert "--workers" not in argv
    argv = api_command(Settings(_env_file=None, api_workers=3))
    assert argv[argv.index("--workers") + 1] == "3"


def test_parse_wrk_result_reads_the_done_hook_line() -> None:
    output = (
        "Running 20s test @ http://127.0.0.1:8000\n"
        'WRK_RESULT {"requests": 30000, "duration_us": 20000000, "status_errors": 2, "socket_errors": 1, '
        '"p50_us": 12500, "p99_us": 48000}\n'
    )
    stats = api_bench.parse_wrk_result(output)
    assert stats == api_bench.LocustStats(requests=30000, failures=3, rps=1500.0, p50_ms=12.5, p99_ms=48.0)
    with pytest.raises(ValueError, match="WRK_RESULT"):
        api_bench.parse_wrk_result("Running 20s test\n")


def test_the_load_tool_is_locust_unless_wrk_is_asked_for() -> None:
    assert api_bench.parse_args([]).tool == "locust"
    assert api_bench.parse_args(["--tool", "wrk"]).tool == "wrk"
    with pytest.raises(SystemExit):
        api_bench.parse_args(["--tool", "ab"])
