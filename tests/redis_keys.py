"""The tests' Redis may be shared (another run, a developer's data), so the suite never flushes it:
every key a test makes starts with a prefix of the test's own, the prefix's keys are deleted when
the test ends, and the run fails if it left a key behind or removed a key it did not make."""

from __future__ import annotations

import uuid

import pytest
import redis

# This run's mark, in every prefix below; xdist's workers are given the controller's
# (conftest.py), and a pytest run inside a test has one of its own.
RUN = f"dptest-{uuid.uuid4().hex[:10]}"

_made: list[tuple[str, str]] = []


def new_prefix(redis_url: str) -> str:
    """A prefix for this test's keys on that Redis: a cache's KEY_PREFIX, a queue's name (django-q2
    adds `django_q:` in front). Its keys are deleted when the test ends."""
    prefix = f"{RUN}-{uuid.uuid4().hex[:12]}"
    _made.extend([(redis_url, f"{prefix}:*"), (redis_url, f"django_q:{prefix}:*")])
    return prefix


def delete_keys(redis_url: str, pattern: str) -> None:
    client = redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)
    except redis.ConnectionError:
        pass  # a test that stopped its own Redis server took the keys with it
    finally:
        client.close()


def delete_made_keys() -> None:
    while _made:
        delete_keys(*_made.pop())


def keys_by_database(redis_url: str) -> dict[int, tuple[set[bytes], set[bytes]]]:
    """Per database of that server: its keys, and those of them that never expire."""
    server = redis.from_url(redis_url)
    try:
        databases = [int(name.removeprefix("db")) for name in server.info("keyspace")]
    finally:
        server.close()
    found = {}
    for number in databases:
        client = redis.Redis(**{**redis.connection.parse_url(redis_url), "db": number})
        keys = list(client.scan_iter(count=1000))
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.ttl(key)
        persistent = {key for key, ttl in zip(keys, pipe.execute(), strict=True) if ttl == -1}
        found[number] = (set(keys), persistent)
        client.close()
    return found


def leftovers(before: dict, after: dict) -> list[str]:
    """This run's keys still there, and keys without an expiry that were there before and are gone
    (a test run's own keys excepted, whose prefixes say `test-`: that run deletes them)."""
    problems = []
    for number, (keys, _) in after.items():
        problems += [f"db {number}: left {key!r}" for key in sorted(keys) if RUN.encode() in key]
    for number, (_, persistent) in before.items():
        still = after.get(number, (set(), set()))[0]
        problems += [f"db {number}: removed {key!r}" for key in sorted(persistent - still) if b"test-" not in key]
    return problems


class _LeftoversCheck:
    def __init__(self, redis_url: str, before: dict) -> None:
        self.redis_url = redis_url
        self.before = before
        self.problems: list[str] = []

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.problems = leftovers(self.before, keys_by_database(self.redis_url))
        if self.problems and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.problems:
            terminalreporter.section("Redis keys", red=True)
            terminalreporter.write_line(f"The run changed {self.redis_url} beyond its own keys' lifetimes:")
            for problem in self.problems[:50]:
                terminalreporter.write_line(f"  {problem}")


def redis_leftovers_check(config: pytest.Config, redis_url: str) -> None:
    """Every database of the tests' Redis is read before the run and after it, by the process that
    sees the whole run (xdist's controller, not a worker)."""
    if hasattr(config, "workerinput"):
        return
    try:
        before = keys_by_database(redis_url)
    except redis.ConnectionError:
        return  # no Redis: the tests that need it say so themselves
    config.pluginmanager.register(_LeftoversCheck(redis_url, before), "redis-leftovers-check")
