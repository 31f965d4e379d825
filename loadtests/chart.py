"""The chart of docs/benchmarks.md from a `make bench` results file: throughput vs pollers, fire lag.

    .venv/bin/python -m loadtests.chart     # .data/bench/results.jsonl -> docs/benchmarks.png
    .venv/bin/python -m loadtests.chart --results r.jsonl --out chart.png

The newest line of each run name is used.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on a server
import matplotlib.pyplot as plt

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def newest_by_run(path: Path) -> dict[str, dict[str, Any]]:
    """The last result line of each run (a run may print several lines: keyed by benchmark too)."""
    newest: dict[str, dict[str, Any]] = {}
    for raw in path.read_text().splitlines():
        line = json.loads(raw)
        newest[line.get("benchmark") or line["run"]] = line
    return newest


def draw(results: dict[str, dict[str, Any]], out: Path) -> None:
    """Two panels: fires per second by poller count (with the targets), and lag percentiles."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    bursts = [r for r in results.values() if r.get("fires_per_second") and not r.get("diverse")]
    bursts.sort(key=lambda r: r["pollers"])
    if bursts:
        pollers = [str(r["pollers"]) for r in bursts]
        left.bar(pollers, [r["fires_per_second"] for r in bursts], color="#4c72b0", label="measured")
        targets = [r.get("target", {}).get("fires_per_second") for r in bursts]
        left.scatter(pollers, targets, color="#c44e52", marker="_", s=900, label="target", zorder=3)
        left.set_title(f"Burst of {bursts[0]['n']:,} due reminders")
        left.set_xlabel("pollers")
        left.set_ylabel("fires per second")
        left.legend(loc="lower right")
    labels, p50, p99 = [], [], []
    for name, result in results.items():
        if result.get("lag_p50_ms") is not None:
            labels.append(f"{name}\n(from due)")
            p50.append(result["lag_p50_ms"])
            p99.append(result["lag_p99_ms"])
        elif name == "idle_lag":
            labels.append("idle, lone reminder")
            p50.append(result["p50_ms"])
            p99.append(result["p99_ms"])
    if labels:
        positions = range(len(labels))
        right.bar([p - 0.2 for p in positions], p50, width=0.4, label="p50", color="#55a868")
        right.bar([p + 0.2 for p in positions], p99, width=0.4, label="p99", color="#dd8452")
        right.set_xticks(list(positions), labels, fontsize=8)
        right.set_yscale("log")
        right.set_ylabel("fire lag, ms (log scale)")
        right.set_title("Fire lag: pushed to Redis minus scheduled")
        right.legend()
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)


def main(argv: Sequence[str] | None = None) -> int:
    """Read the results, write the PNG."""
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.chart",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--results", type=Path, default=PROJECT_ROOT / ".data" / "bench" / "results.jsonl")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "benchmarks.png")
    args = parser.parse_args(argv)
    draw(newest_by_run(args.results), args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
