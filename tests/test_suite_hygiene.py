"""The suite's own promises: every test starts on the database as the migrations left it, whatever
ran before it on the same database, and a run that leaves a key in the tests' Redis, or removes
one it did not make, fails."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import redis
from django.core.management import call_command

import conftest
from billing.models import CreditPack, Plan
from generation.models import AIModel
from tests import redis_keys
from tests.redis_keys import keys_by_database, leftovers, new_prefix


@pytest.mark.django_db(transaction=True)
def test_after_a_flush_the_seeded_catalog_packs_and_plans_are_back_as_they_were():
    catalog = sorted(AIModel.objects.values_list("key", "credit_cost", "enabled"))
    packs = sorted(CreditPack.objects.values_list("name", "credits"))
    assert catalog and packs
    AIModel.objects.update(enabled=False)
    call_command("flush", "--noinput")  # what a transactional test's teardown does
    assert sorted(AIModel.objects.values_list("key", "credit_cost", "enabled")) == catalog
    assert sorted(CreditPack.objects.values_list("name", "credits")) == packs
    assert Plan.objects.exists()


def test_a_key_the_run_left_and_a_key_it_removed_are_both_reported(redis_url):
    left = f"{new_prefix(redis_url)}:counter"
    redis.from_url(redis_url).set(left, 1)  # new_prefix's keys are deleted after this test
    database = redis.connection.parse_url(redis_url).get("db", 0)
    someone_else = f"someone-else-{uuid.uuid4().hex}".encode()
    before = {int(database): (set(), {someone_else})}  # a key without expiry, there before the run

    problems = leftovers(before, keys_by_database(redis_url))

    assert f"db {database}: left {left.encode()!r}" in problems
    assert f"db {database}: removed {someone_else!r}" in problems
    assert all(redis_keys.RUN in problem or "removed" in problem for problem in problems)


def test_the_modules_started_first_exist_and_are_in_a_slow_tier():
    root = Path(conftest.__file__).parent
    for path in conftest.LONGEST_FIRST:
        assert (root / path).is_file(), f"{path} (conftest.LONGEST_FIRST) is gone: take it off the list"
        assert conftest.in_a_slow_tier(path), f"{path} (conftest.LONGEST_FIRST) is in no slow tier"


class _Cache:
    """pytest's cache as the timings use it: get and set of JSON values."""

    def __init__(self, values: dict) -> None:
        self.values = values

    def get(self, key: str, default):
        return self.values.get(key, default)

    def set(self, key: str, value) -> None:
        self.values[key] = value


def test_the_modules_that_took_longest_last_time_start_first_among_the_rest():
    cache = _Cache({conftest.TEST_SECONDS: {"a/test_old.py::test_gone": 1.0, "a/test_slow.py::test_x": 9.0}})
    timings = conftest.RunTimings(cache)
    for nodeid, took in [("a/test_slow.py::test_x", 0.5), ("a/test_slow.py::test_x", 2.0), ("b/test_new.py::t", 0.2)]:
        timings.pytest_runtest_logreport(
            pytest.TestReport(nodeid, ("", 0, ""), {}, "passed", None, "call", duration=took)
        )
    timings.pytest_sessionfinish()
    # This run's times replace the last ones test by test; tests that did not run keep theirs.
    assert cache.values[conftest.TEST_SECONDS] == {
        "a/test_old.py::test_gone": 1.0, "a/test_slow.py::test_x": 2.5, "b/test_new.py::t": 0.2,
    }  # fmt: skip

    modules = {  # path: (tests, seconds last time)
        "generation/tests/test_many_quick.py": (40, 3.0),
        "generation/tests/test_few_slow.py": (2, 8.0),
        "generation/tests/test_new.py": (5, 0.0),
        "tests/faults/test_bad_input.py": (9, 1.0),
        conftest.LONGEST_FIRST[0]: (3, 0.0),
    }
    order = sorted(modules, key=lambda path: conftest.run_order(path, *modules[path]))
    assert order == [
        conftest.LONGEST_FIRST[0],
        "tests/faults/test_bad_input.py",
        "generation/tests/test_few_slow.py",
        "generation/tests/test_many_quick.py",
        "generation/tests/test_new.py",
    ]
