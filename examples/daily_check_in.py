"""Use case 3, daily check-ins: every day at 10:00 in the user's time zone, start a dialogue.

Start `make run` (`reminders up`), then in another shell:
    .venv/bin/python examples/daily_check_in.py --timezone Europe/Berlin   # cron 0 10 * * *, kept on exit
    .venv/bin/python examples/daily_check_in.py --every-seconds 2 --check-ins 3   # demo; cancelled after

It finds the API, its key and Redis by itself while `make run` runs in this directory; otherwise
export REMINDERS_API_URL, REMINDERS_API_KEY and REMINDERS_REDIS_URL (the banner prints them) or pass
--api-url, --api-key and --redis-url. Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as redis
import structlog

from cli.running import add_connection_options, run_example
from client import AsyncRemindersClient, HandlerResult, Recurring


def say(text: str) -> None:
    """Tell the person running the demo."""
    print(text, flush=True)  # noqa: T201  # an example's output is its point


async def main(args: argparse.Namespace) -> int:
    demo = args.every_seconds is not None
    cron = f"*/{args.every_seconds} * * * * *" if demo else "0 10 * * *"
    payload = {"check_type": "daily_report", "user_id": args.user_id, "report_id": f"daily_{args.user_id}"}
    async with AsyncRemindersClient(args.api_url, api_key=args.api_key) as api:
        new = Recurring(args.user_id, args.assistant_id, cron, payload, timezone=args.timezone)
        reminder = await api.create(new)
        fires = (await api.next_fires(reminder.id, count=3)).fires
        zone = ZoneInfo(args.timezone)  # the API's local times carry an offset; the zone names it (CET)
        say(f"check-in {reminder.id} ({cron}, {args.timezone}); next: "
            + ", ".join(f"{f.utc.astimezone(zone):%a %d %b %H:%M:%S %Z}" for f in fires))  # fmt: skip
        seen: list[str] = []
        done = asyncio.Event()

        async def handle(event: dict[str, Any]) -> HandlerResult:
            if event["payload"]["reminder_id"] != str(reminder.id):
                raise LookupError("not this demo's reminder: left unacked, so it is delivered again")
            check = event["payload"]["payload"]
            seen.append(event["event_id"])
            say(f"@user{check['user_id']}: good morning! How did yesterday go? ({check['report_id']}, "
                f"check-in {len(seen)}, fired {event['payload']['triggered_at']})")  # fmt: skip
            if args.check_ins is not None and len(seen) >= args.check_ins:
                done.set()
            return HandlerResult(action="continue")

        queue = redis.from_url(args.redis_url)
        running = asyncio.create_task(api.consumer(queue, handle, f"check-in-{reminder.id}").run(done))
        try:
            await asyncio.wait_for(done.wait(), timeout=args.timeout)
        except TimeoutError:
            say(f"stopped after {args.timeout} s with {len(seen)} check-ins")
        finally:
            done.set()
            await running
            await queue.aclose()
            if demo:  # a check-in every few seconds is only for the demo: do not leave it running
                await api.cancel(reminder.id)
        say(f"status: {(await api.get(reminder.id)).status}")
    return 0 if args.check_ins is None or len(seen) >= args.check_ins else 1


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--timezone", default="Europe/Berlin", help="the user's IANA time zone")
    parser.add_argument("--every-seconds", type=int, help="demo: every N seconds (1-59) instead of 10:00")
    parser.add_argument("--check-ins", type=int, help="stop after this many check-ins")
    parser.add_argument("--user-id", type=int, default=123)
    parser.add_argument("--assistant-id", default="6f1c1b54-3a63-4b44-9d0c-6c0a8e2c6a11")
    parser.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    add_connection_options(parser)
    run_example(parser, main)
