"""CPU accounting for the benchmarks, read from Linux's /proc: who used the machine, and how fast it is.

On a 2-core machine the service, both servers and the load generator share the CPUs, so a rate
alone does not say what limited it; CPU time per unit of work does, and it compares across runs.
``calibration_ms`` times a fixed pure-Python loop: the same code gave 16,700 fires/s on one day and
6,800/s on a slower one, and this figure is what tells such machines apart.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def parse_cpu_ticks(stat: str) -> int:
    """utime + stime (clock ticks) of a ``/proc/PID/stat`` line."""
    # The command name (field 2) may hold spaces and parentheses: count fields after its last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used (0 once it has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    return parse_cpu_ticks(stat) / CLOCK_TICKS


def children(pid: int) -> list[int]:
    """The direct child processes of ``pid`` (none once it has ended)."""
    # Linux lists each thread's child processes under /proc/PID/task/TID/children.
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def parent(pid: int) -> int | None:
    """The parent process of ``pid``, None once it has ended."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("PPid:"):
                return int(line.split()[1])
    return None


def tree_cpu_seconds(pids: list[int]) -> float:
    """CPU time used so far by each process of ``pids`` and its live children.

    Processes that ended are not counted: take readings while the processes of interest live.
    """
    return sum(cpu_seconds(pid) + sum(cpu_seconds(child) for child in children(pid)) for pid in pids)


def machine_busy_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from ``/proc/stat``."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    return sum(values) - idle, sum(values)


def calibration_ms(rounds: int = 5) -> float:
    """The best of ``rounds`` timings of a fixed pure-Python loop (1,000,000 additions), in ms."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)
