"""Use case 2, watching a condition: a recurring check of an exchange rate that ends its own chain.

Every fire the assistant checks the rate (a fake, deterministic one here: it rises by --step per
check); once it crosses the threshold it tells the user and acks with action "complete", which ends
the recurring reminder. Start `make run` (`reminders up`), then in another shell:
    .venv/bin/python examples/currency_monitor.py --every 2      # a check every 2 s (default: 5 min)

It finds the API, its key and Redis by itself while `make run` runs in this directory; otherwise
export REMINDERS_API_URL, REMINDERS_API_KEY and REMINDERS_REDIS_URL (the banner prints them) or pass
--api-url, --api-key and --redis-url. Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
from typing import Any

import redis.asyncio as redis
import structlog

from cli.running import add_connection_options, run_example
from client import AsyncRemindersClient, HandlerResult, Recurring


def say(text: str) -> None:
    """Tell the person running the demo."""
    print(text, flush=True)  # noqa: T201  # an example's output is its point


async def main(args: argparse.Namespace) -> int:
    # 6 fields put seconds first: "*/2 * * * * *" is every 2 seconds.
    cron = f"*/{args.every} * * * * *" if args.every else "*/5 * * * *"
    payload = {"monitor_type": "currency", "currency_pair": "USD/EUR", "threshold": args.threshold,
               "direction": "above"}  # fmt: skip
    checks = itertools.count()
    async with AsyncRemindersClient(args.api_url, api_key=args.api_key) as api:
        # skip: after downtime the next check is as good as a catch-up one, so send none of the late ones.
        new = Recurring(args.user_id, args.assistant_id, cron, payload, misfire_policy="skip")
        reminder = await api.create(new)
        say(f"watching USD/EUR above {args.threshold} with {reminder.id} ({cron})")
        done = asyncio.Event()

        async def handle(event: dict[str, Any]) -> HandlerResult:
            if event["payload"]["reminder_id"] != str(reminder.id):
                raise LookupError("not this demo's reminder: left unacked, so it is delivered again")
            watch = event["payload"]["payload"]
            rate = round(args.start + args.step * next(checks), 4)  # the fake rate source
            if rate > watch["threshold"]:
                say(f"@user{args.user_id}: {watch['currency_pair']} is {rate}, above {watch['threshold']}")
                done.set()
                return HandlerResult(action="complete", details={"rate": rate})
            say(f"check: {watch['currency_pair']} = {rate}, not above {watch['threshold']} yet")
            return HandlerResult(action="continue", details={"rate": rate})

        queue = redis.from_url(args.redis_url)
        running = asyncio.create_task(api.consumer(queue, handle, f"currency-{reminder.id}").run(done))
        try:
            await asyncio.wait_for(done.wait(), timeout=args.timeout)
        except TimeoutError:
            say(f"threshold not crossed within {args.timeout} s; cancelling the monitor")
            await api.cancel(reminder.id)
            return 1
        finally:
            done.set()
            await running
            await queue.aclose()
        say(f"status: {(await api.get(reminder.id)).status}")
    return 0


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--every", type=int, help="check every N seconds (1-59) instead of every 5 min")
    parser.add_argument("--threshold", type=float, default=1.05)
    parser.add_argument("--start", type=float, default=1.0, help="the fake rate at the first check")
    parser.add_argument("--step", type=float, default=0.02, help="how much the fake rate rises per check")
    parser.add_argument("--user-id", type=int, default=123)
    parser.add_argument("--assistant-id", default="6f1c1b54-3a63-4b44-9d0c-6c0a8e2c6a11")
    parser.add_argument("--timeout", type=float, default=3600, help="give up after this many seconds")
    add_connection_options(parser)
    run_example(parser, main)
