"""The Redis cache keeps one client per connection pool (core/cache.py)."""

from __future__ import annotations

import redis
from django.core.cache import cache


def test_the_cache_reuses_its_client_and_reconnects_after_a_dropped_connection(redis_cache, redis_url):
    cache.set("greeting", {"hello": "world"}, 60)
    client = cache._cache.get_client()
    assert cache._cache.get_client() is client  # not a new client per operation
    assert cache.get("greeting") == {"hello": "world"}
    # The server drops the connection (a restart, an idle timeout): the next read reconnects.
    redis.from_url(redis_url).client_kill_filter(_id=client.client_id())
    assert cache.get("greeting") == {"hello": "world"}
    assert cache.get_many(["greeting", "missing"]) == {"greeting": {"hello": "world"}}
