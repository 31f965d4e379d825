"""Use case 1, "remind me in 2 hours": a one-time reminder; when it fires, tag the user and ack.

Start the service with `make run` (`reminders up`), then in another shell:
    .venv/bin/python examples/remind_me_in.py --in PT2H --text "Meeting"    # or --in PT5S to see it

It finds the API, its key and Redis by itself while `make run` runs in this directory; otherwise
export REMINDERS_API_URL, REMINDERS_API_KEY and REMINDERS_REDIS_URL (the banner prints them) or pass
--api-url, --api-key and --redis-url. Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import uuid
from typing import Any

import redis.asyncio as redis
import structlog

from cli.running import add_connection_options, run_example
from client import AsyncRemindersClient, HandlerResult, OneTime


def say(text: str) -> None:
    """Tell the person running the demo."""
    print(text, flush=True)  # noqa: T201  # an example's output is its point


async def main(args: argparse.Namespace) -> int:
    payload = {"text": args.text, "user_id": args.user_id, "priority": "normal"}
    async with AsyncRemindersClient(args.api_url, api_key=args.api_key) as api:
        reminder = await api.create(
            OneTime(args.user_id, args.assistant_id, payload, trigger_in=args.in_),
            idempotency_key=str(uuid.uuid4()),  # a retried create (lost reply) makes no second reminder
        )
        say(f"created {reminder.id}: fires at {reminder.next_run_at:%Y-%m-%d %H:%M:%S} UTC")
        done = asyncio.Event()

        async def handle(event: dict[str, Any]) -> HandlerResult:
            if event["payload"]["reminder_id"] != str(reminder.id):
                raise LookupError("not this demo's reminder: left unacked, so it is delivered again")
            data = event["payload"]["payload"]
            say(f"@user{data['user_id']}: reminder: {data['text']} (event {event['event_id']})")
            done.set()
            return HandlerResult(result="ok", details={"tagged_user": data["user_id"]})

        queue = redis.from_url(args.redis_url)
        consumer = api.consumer(queue, handle, f"remind-me-in-{reminder.id}")
        running = asyncio.create_task(consumer.run(done))
        try:
            await asyncio.wait_for(done.wait(), timeout=args.timeout)
        except TimeoutError:
            say(f"no event within {args.timeout} s")
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
    parser.add_argument("--in", dest="in_", default="PT2H", help="ISO 8601 duration: PT2H, PT5S")
    parser.add_argument("--text", default="Meeting")
    parser.add_argument("--user-id", type=int, default=123)
    parser.add_argument("--assistant-id", default="6f1c1b54-3a63-4b44-9d0c-6c0a8e2c6a11")
    parser.add_argument("--timeout", type=float, default=3 * 3600, help="give up after this many seconds")
    add_connection_options(parser)
    run_example(parser, main)
