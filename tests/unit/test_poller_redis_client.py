"""The poller's Redis client settings (poller/main.py): built, never connected."""

from __future__ import annotations

from core.settings import Settings
from poller.main import redis_client


def test_the_poller_tries_each_redis_call_once_with_a_5_s_timeout() -> None:
    # redis-py's own retries would hold a claim's transaction open while they run (the push is
    # inside it); the poller's backoff and the sweep take over after one failed try.
    client = redis_client(Settings(redis_url="redis://127.0.0.1:6379/0"))
    retry = client.get_retry()
    assert retry is not None
    assert retry.get_retries() == 0
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == 5
    assert kwargs["socket_connect_timeout"] == 5
