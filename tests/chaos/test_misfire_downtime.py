"""Chaos 5: every poller down for a while, with each misfire policy: exactly the expected events.

Reminders fire every 2 s with a 1 s misfire grace. All pollers are SIGKILLed for 10 s, then
restarted. Afterwards every occurrence from the first one to the reminder's current next fire
must be accounted for exactly once: sent (a delivery whose event is in the queue) or skipped
(an audited ``skip``). By policy, the occurrences missed during the outage are
``skip``: all skipped; ``fire_once``: one late catch-up event, the rest skipped;
``fire_all``: every one sent, marked late.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from uuid import UUID

import orjson
import pytest

from core.cron import next_fire
from tests.chaos.harness import ChaosCluster
from tests.factories import ASSISTANT_ID

pytestmark = pytest.mark.chaos

CRON = "*/2 * * * * *"
PER_POLICY = 20
POLICIES = ("skip", "fire_once", "fire_all")
POLLERS = 2
UP_BEFORE_S = 5.0
DOWN_S = 10.0
UP_AFTER_S = 5.0

_SEED_SQL = """
INSERT INTO reminders (id, user_id, assistant_id, created_by_assistant_id, type, cron_expression,
                       timezone, payload_ciphertext, payload_key_id, status, next_run_at,
                       misfire_policy, misfire_grace_seconds)
SELECT gen_random_uuid(), g, $1, $1, 'recurring', $2, 'UTC', $6, $7, 'active', $3, $4, 1
FROM generate_series(1, $5) AS g
RETURNING id
"""


def occurrences(first: datetime, until: datetime) -> list[datetime]:
    """Every fire of CRON from ``first`` (included) to ``until`` (excluded)."""
    found, current = [], first
    while current < until:
        found.append(current)
        current = next_fire(CRON, "UTC", current)
    return found


@pytest.mark.timeout(120)
async def test_outage_with_each_misfire_policy(chaos: ChaosCluster) -> None:  # noqa: C901 (one scenario per policy)
    now = datetime.now(UTC)
    first = next_fire(CRON, "UTC", now + timedelta(seconds=2))
    policy_of: dict[UUID, str] = {}
    conn = await chaos.connect()
    try:
        for policy in POLICIES:
            rows = await conn.fetch(
                _SEED_SQL,
                ASSISTANT_ID,
                CRON,
                first,
                policy,
                PER_POLICY,
                chaos.cipher.encrypt("{}"),
                chaos.cipher.key_id,
            )
            policy_of.update({row["id"]: policy for row in rows})
    finally:
        await conn.close()

    await chaos.start_pollers(POLLERS)
    await asyncio.sleep((first - datetime.now(UTC)).total_seconds() + UP_BEFORE_S)
    for index in range(POLLERS):
        await chaos.kill_poller(index)
    down_at = datetime.now(UTC)
    await asyncio.sleep(DOWN_S)
    for index in range(POLLERS):
        chaos.restart_poller(index)
    await asyncio.sleep(UP_AFTER_S)
    for index in range(POLLERS):
        await chaos.kill_poller(index, sig=signal.SIGTERM)

    conn = await chaos.connect()
    try:
        reminders = await conn.fetch("SELECT id, next_run_at FROM reminders")
        deliveries = await conn.fetch(
            "SELECT event_id, reminder_id, scheduled_for, late, state, created_at FROM deliveries"
        )
        skips = await conn.fetch(
            "SELECT reminder_id, details->>'scheduled_for' AS at FROM audit_log WHERE action = 'skip'"
        )
    finally:
        await conn.close()
    queued = Counter((e["event_id"], e["attempt"]) for e in await chaos.read_queue())

    sent: defaultdict[UUID, list[datetime]] = defaultdict(list)
    late: defaultdict[UUID, list[datetime]] = defaultdict(list)
    skipped: defaultdict[UUID, list[datetime]] = defaultdict(list)
    problems: Counter[str] = Counter()
    for row in deliveries:
        if queued[(str(row["event_id"]), 1)] != 1:
            problems["lost_or_duplicated"] += 1
        if row["state"] == "pending":
            problems["pending"] += 1
        if row["created_at"] < row["scheduled_for"]:
            problems["early"] += 1
        sent[row["reminder_id"]].append(row["scheduled_for"])
        if row["late"]:
            late[row["reminder_id"]].append(row["scheduled_for"])
    for row in skips:
        skipped[row["reminder_id"]].append(datetime.fromisoformat(row["at"].replace("Z", "+00:00")))
    problems["unexpected_events"] = sum(queued.values()) - len(deliveries)

    missed_by_policy: defaultdict[str, list[int]] = defaultdict(list)
    late_by_policy: defaultdict[str, list[int]] = defaultdict(list)
    for row in reminders:
        rid, policy = row["id"], policy_of[row["id"]]
        expected = occurrences(first, row["next_run_at"])
        accounted = sorted(sent[rid] + skipped[rid])
        if accounted != expected:
            problems["not_exactly_once"] += 1
        missed = [t for t in expected if t in late[rid] or t in skipped[rid]]
        missed_by_policy[policy].append(len(missed))
        late_by_policy[policy].append(len(late[rid]))
        if policy == "skip" and late[rid]:
            problems["skip_sent_late"] += 1
        if policy == "fire_once" and len(late[rid]) != 1:
            problems["fire_once_not_one"] += 1
        if policy == "fire_all" and (skipped[rid] or late[rid] != missed):
            problems["fire_all_skipped"] += 1
        if len(missed) < 3:
            problems["outage_not_exercised"] += 1

    verdict = {
        "scenario": "misfire_downtime",
        "down_at": down_at.isoformat(),
        "down_s": DOWN_S,
        "missed_per_reminder": {p: sorted(set(v)) for p, v in missed_by_policy.items()},
        "late_events_per_reminder": {p: sorted(set(v)) for p, v in late_by_policy.items()},
        "problems": {k: v for k, v in problems.items() if v},
    }
    line = orjson.dumps(verdict).decode()
    sys.stdout.write(f"CHAOS VERDICT {line}\n")
    assert not verdict["problems"], line
