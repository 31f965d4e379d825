"""Every benchmark of issue 7 in turn (what `make bench` runs), then one table of figures and targets.

    .venv/bin/python -m loadtests.run_all            # sizes that fit in about 10 minutes
    .venv/bin/python -m loadtests.run_all --full     # the 1M burst and the 10M flat-cost table too
    .venv/bin/python -m loadtests.run_all --only burst_shared --only idle_lag

Each benchmark runs as its own process, one after another (they would skew each other on a small
machine), with embedded servers of its own unless REMINDERS_DATABASE_URL / REMINDERS_REDIS_URL are
set (then give Redis a database number of its own: the burst benchmarks flush it). Every JSON line
they print is kept in ``--out`` (default ``.data/bench/results.jsonl``) with the run's name; the
table at the end says which targets were met. The exit status is 1 if any target was missed or a
benchmark failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests.procstat import calibration_ms

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Run:
    """One benchmark invocation: its name, module (``loadtests.<module>``) and arguments (normal and
    --full sizes)."""

    name: str
    module: str
    args: tuple[str, ...]
    full_args: tuple[str, ...] | None = None


RUNS = (
    Run("burst_shared", "burst", ("--n", "100000", "--target", "20000"),
        ("--n", "1000000", "--target", "20000", "--timeout", "1200")),
    Run("burst_two_pollers", "burst", ("--n", "100000", "--pollers", "2", "--target", "22000"),
        ("--n", "1000000", "--pollers", "2", "--target", "22000", "--timeout", "1200")),
    Run("burst_diverse", "burst", ("--n", "50000", "--diverse", "--target", "8000"),
        ("--n", "200000", "--diverse", "--target", "8000", "--timeout", "1200")),
    Run("idle_lag", "idle_lag", ("--samples", "200")),
    Run("flat_cost", "flat_cost", (), ("--full",)),
    Run("api", "api_bench", ("--duration", "30")),
    Run("apscheduler_compare", "apscheduler_compare", ("--count", "20000")),
)  # fmt: skip


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.run_all",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--full", action="store_true", help="the issue's full sizes (1M burst, 10M rows)")
    parser.add_argument("--only", action="append", choices=[r.name for r in RUNS], help="run just these")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / ".data" / "bench" / "results.jsonl")
    return parser.parse_args(argv)


def run(bench: Run, full: bool) -> tuple[list[dict[str, Any]], int, float]:
    """Run one benchmark; its JSON lines (stderr passes through), exit status and wall time."""
    args = bench.full_args if full and bench.full_args is not None else bench.args
    # -m with cwd = the project root: the child imports this checkout's loadtests (and core...).
    argv = [sys.executable, "-m", f"loadtests.{bench.module}", *args]
    print(f"\n==> {bench.name}: {' '.join(argv[1:])}", file=sys.stderr, flush=True)
    began = time.monotonic()
    done = subprocess.run(argv, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True, check=False)
    lines = []
    for raw in done.stdout.splitlines():
        try:
            lines.append(json.loads(raw))
        except json.JSONDecodeError:
            print(raw, file=sys.stderr)
    return lines, done.returncode, time.monotonic() - began


def figure(line: dict[str, Any]) -> str:
    """The headline number of a result line, for the table."""
    for key, unit in (("fires_per_second", "/s"), ("rps", " req/s"), ("ratio", "x")):
        if line.get(key) is not None:
            extra = f", p99 {line['p99_ms']} ms" if key == "rps" and "p99_ms" in line else ""
            return f"{line[key]}{unit}{extra}"
    if "claim_ms_median" in line:
        return f"{line['rows']:,} rows: claim of 500 in {line['claim_ms_median']} ms (median)"
    if "p50_ms" in line:
        return f"p50 {line['p50_ms']} ms, p99 {line['p99_ms']} ms"
    return "-"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the set, append every result line to --out, print the table; 1 if anything missed."""
    options = parse_args(argv)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    # Before any benchmark, on a quiet machine: the figure that says how fast this machine is.
    calibration = calibration_ms()
    rows: list[tuple[str, str, str, str]] = []
    ok = True
    for bench in RUNS:
        if options.only and bench.name not in options.only:
            continue
        lines, code, seconds = run(bench, options.full)
        with options.out.open("a") as out:
            for line in lines:
                out.write(json.dumps({"run": bench.name, "full": options.full, **line}) + "\n")
        if not lines:
            rows.append((bench.name, "failed", "-", f"exit {code}"))
            ok = False
            continue
        for line in lines:
            met = line.get("met")
            ok = ok and met is not False and code == 0
            label = line.get("benchmark", bench.name)
            rows.append((label, figure(line), json.dumps(line.get("target")), f"{met} ({seconds:.0f} s)"))
    width = [max(len(r[i]) for r in [("benchmark", "figure", "target", "met"), *rows]) for i in range(4)]
    print()
    for row in [("benchmark", "figure", "target", "met"), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, width, strict=True)))
    print(
        f"\nmachine: {os.cpu_count()} CPUs, calibration {calibration} ms (a 1,000,000-addition Python "
        "loop; compare with docs/benchmarks.md before comparing figures)"
    )
    print(f"results appended to {options.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
