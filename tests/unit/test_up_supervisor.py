"""`reminders up`'s supervisor on real child processes: restarts with a delay that doubles in a crash loop."""

from __future__ import annotations

import os
import sys

from cli.up import RESTART_MAX_DELAY, STABLE_AFTER, Children

CRASH = [sys.executable, "-c", "raise SystemExit(3)"]


def exited(children: Children) -> None:
    """Wait until every child has exited."""
    for child in children.running:
        child.process.wait(timeout=10)


def test_a_crash_loop_is_restarted_ever_more_slowly() -> None:
    children = Children()
    children.start("poller-1", CRASH, dict(os.environ))
    now = children.running[0].started_at
    delays = []
    try:
        for _ in range(7):
            exited(children)
            [warning] = children.supervise(now)
            assert warning.startswith("warning: poller-1 exited with code 3 unexpectedly; restarting it in ")
            delay = float(warning.rsplit(" ", 1)[1].rstrip("s"))
            delays.append(delay)
            assert children.supervise(now + delay - 0.01) == []  # not before its time
            now += delay
            [restarted] = children.supervise(now)
            assert restarted.startswith("restarted poller-1 (pid ")
        assert delays == [1, 2, 4, 8, 16, RESTART_MAX_DELAY, RESTART_MAX_DELAY]
        assert children.running[0].restarts == 7

        # A run that lasted STABLE_AFTER or more starts the delays over.
        exited(children)
        [warning] = children.supervise(now + STABLE_AFTER)
        assert warning.endswith("restarting it in 1s")
    finally:
        children.stop()
    assert children.running == []
    assert children.supervise(now + 3600) == []  # nothing restarts after a stop
