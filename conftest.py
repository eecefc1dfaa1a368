"""Suite-wide test setup: PostgreSQL only, fast hashing, plain static files, fresh cache and media,
the database as the migrations left it before every test, and no key left in the tests' Redis."""

from __future__ import annotations

import gc
import json
import os
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import time_machine
from django.conf import settings

from tests import redis_keys
from tests.redis_keys import delete_made_keys, new_prefix, redis_leftovers_check


def pytest_configure(config: pytest.Config) -> None:
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise pytest.UsageError(
            "The test suite runs on PostgreSQL (money and concurrency rules are enforced there). "
            "Run `make test`, or set DATABASE_URL=postgres://USER:PASSWORD@127.0.0.1:5432/dreampixel."
        )
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Hashed static names need collectstatic first; `make test` checks that build separately.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # WhiteNoise otherwise reads every file under STATIC_ROOT each time a test client builds the
    # middleware (a third of the suite's time once collectstatic has run); it finds them per request.
    settings.WHITENOISE_AUTOREFRESH = True
    # Local memory unless a test asks for Redis (redis_cache, shared_cache): a REDIS_URL in the
    # developer's environment must not send the suite's keys, or its clear(), to that Redis.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tests"}}
    if hasattr(config, "workerinput"):
        redis_keys.RUN = config.workerinput["dreampixel_test_run"]
    redis_leftovers_check(config, os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    if not hasattr(config, "workerinput") and hasattr(config, "cache"):
        config.pluginmanager.register(RunTimings(config.cache), "dreampixel-test-seconds")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # The interpreter's exit collects the whole heap over and over, and the run waits for every
    # worker to exit. Frozen objects are skipped; nothing is left to clean up by then (atexit
    # handlers still run).
    gc.freeze()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    # Every xdist worker marks its Redis keys with the run's one mark, which the controller checks.
    node.workerinput["dreampixel_test_run"] = redis_keys.RUN


# What the data migrations put in the database (the catalog, packs and plans, the queue's schedules,
# staff groups). A transactional test's flush empties every table; they are put back after it.
SEEDED_BY_MIGRATIONS = [
    "auth.Group",
    "billing.CreditPack",
    "billing.Plan",
    "django_q.Schedule",
    "generation.AIModel",
    "generation.SiteSettings",
]
# Made again by their own apps after every flush (post_migrate), so not part of the copy.
REMADE_AFTER_FLUSH = ["contenttypes.ContentType", "auth.Permission"]


def _tables_as_migrated() -> bool:
    """Seeded tables filled and every other table empty, as the migrations leave a new database."""
    from django.apps import apps

    for model in apps.get_models():
        label = model._meta.label
        if model._meta.proxy or not model._meta.managed or label in REMADE_AFTER_FLUSH:
            continue
        if model._base_manager.exists() != (label in SEEDED_BY_MIGRATIONS):
            return False
    return True


def _rebuild_test_database() -> None:
    from django.db import connection

    connection.settings_dict["TEST"]["NAME"] = connection.settings_dict["NAME"]
    connection.close()
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database as the migrations leave it, before every test whatever ran before: the
    rows they seed are copied once and put back after each flush of a transactional test."""
    from django.apps import apps
    from django.core import serializers
    from django.core.management.color import no_style
    from django.db import connection
    from django.db.models.signals import post_migrate

    with django_db_blocker.unblock():
        if not _tables_as_migrated():
            # --reuse-db kept a database an interrupted or older run left changed: build it again.
            _rebuild_test_database()
            assert _tables_as_migrated(), "a migration seeds a table SEEDED_BY_MIGRATIONS (conftest.py) does not name"
        # Each flush truncates every table, leaving a dead catalog row per table and index
        # (thousands a run in each worker's database). A server with autovacuum off, as on the CI
        # machines, never reclaims them from a reused database; VACUUM does, in well under a
        # second. And commits in the test database stop waiting for the disk (a crash could lose
        # the last few, which a test database never needs; isolation and locks are unchanged),
        # for every process that connects to it after this: threads, clusters, servers. The ORM
        # has a word for neither.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM")
            name = connection.ops.quote_name(connection.settings_dict["NAME"])
            cursor.execute(f"ALTER DATABASE {name} SET synchronous_commit = off")
            cursor.execute("SET synchronous_commit = off")
        seeded = {
            label: json.loads(serializers.serialize("json", apps.get_model(label)._base_manager.order_by("pk")))
            for label in SEEDED_BY_MIGRATIONS
            if label != "auth.Group"
        }

    def seed_again(using, **kwargs) -> None:
        from django.db import connections

        from operations.staff_roles import staff_roles_write

        # The staff roles, with the two permissions no model declares (the flush took them too);
        # every app's post_migrate has made the model permissions again by now.
        staff_roles_write(apps)
        # The tables a flush emptied (a test's own `migrate` sends the same signal onto full ones,
        # and an app may have filled its table again already: the queue's schedules).
        rows = [
            row
            for label, rows in seeded.items()
            if not apps.get_model(label)._base_manager.using(using).exists()
            for row in rows
        ]
        if rows:
            connection = connections[using]
            connection.creation.deserialize_db_from_string(json.dumps(rows))
            # The rows keep their ids; after a flush that reset the sequences, new rows follow them.
            models = [apps.get_model(label) for label in seeded]
            with connection.cursor() as cursor:
                for statement in connection.ops.sequence_reset_sql(no_style(), models):
                    cursor.execute(statement)

    # The last app's signal: by then every app's content types and permissions exist again.
    last_app = [config for config in apps.get_app_configs() if config.models_module][-1]
    post_migrate.connect(seed_again, sender=last_app, dispatch_uid="conftest.seed_again")
    yield
    post_migrate.disconnect(sender=last_app, dispatch_uid="conftest.seed_again")


# The slow tiers, marked by where their tests live so that nobody has to remember the marker:
# `make test-fast` leaves them out (README, "Tests").
TIERS = {"tests/browser/": "browser", "tests/faults/": "faults", "tests/deploy/": "deploy", "tests/scale/": "scale"}
# Modules elsewhere whose tests start processes of their own: clusters, web servers, `make dev`.
CLUSTERS = {
    "dreampixel/tests/test_dev_ctrl_c.py",
    "dreampixel/tests/test_make_dev_job.py",
    "generation/tests/test_qcluster.py",
    "generation/tests/test_redis_clusters.py",
    "generation/tests/test_worker_restart.py",
    "operations/tests/test_worker_clusters.py",
}


# The modules that run longest (most of it waiting on clusters, timeouts, builds and browsers),
# longest first. `make test` hands whole modules to its workers in the order below (Makefile,
# --no-loadscope-reorder), so these start at once and the short modules fill in around them: a
# worker that picked one up near the end would keep the run going while the others sat idle.
LONGEST_FIRST = [
    "tests/faults/test_cluster_stalls.py",
    "tests/browser/test_first_use_in_a_browser.py",
    "tests/browser/test_create_and_gallery_in_a_browser.py",
    "tests/faults/test_observability.py",
    "tests/faults/test_queue_outages.py",
    "tests/faults/test_worker_kills.py",
    "tests/deploy/test_image.py",
    "tests/deploy/test_deploy_by_the_docs.py",
    "tests/browser/test_results_in_a_browser.py",
    "tests/browser/test_admin_in_a_browser.py",
    "tests/scale/test_query_shapes.py",
    "dreampixel/tests/test_make_dev_job.py",
]


def in_a_slow_tier(path: str) -> bool:
    return path in CLUSTERS or any(path.startswith(folder) for folder in TIERS)


# How long each test took when it last ran, in pytest's cache (.pytest_cache/). Modules whose
# tests took longest start first among the rest, so that no worker is left finishing a long
# module near the end while the others sit idle. A fresh clone has no timings yet: then the
# modules with more tests go first (what pytest-xdist's own order does).
TEST_SECONDS = "dreampixel/test-seconds"


class RunTimings:
    """Kept by the process that sees every report (xdist's controller, or a run without xdist)."""

    def __init__(self, cache: pytest.Cache) -> None:
        self.cache = cache
        self.seconds: defaultdict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[report.nodeid] += report.duration  # setup, call and teardown

    def pytest_sessionfinish(self) -> None:
        if self.seconds:
            known = self.cache.get(TEST_SECONDS, {})
            self.cache.set(TEST_SECONDS, known | {test: round(took, 3) for test, took in self.seconds.items()})


def run_order(path: str, tests: int, seconds: float) -> tuple[int, float, int]:
    """The longest modules as listed, then the rest of the slow tiers, then everything else; among
    those, the modules that took longest last time first, then those with more tests."""
    if path in LONGEST_FIRST:
        return 0, LONGEST_FIRST.index(path), 0
    return (1 if in_a_slow_tier(path) else 2), -seconds, -tests


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]):
    # Before every other plugin: the tier markers must be there when `-m` deselects.
    paths = {item: Path(item.path).relative_to(config.rootpath).as_posix() for item in items}
    for item, path in paths.items():
        for folder, tier in TIERS.items():
            if path.startswith(folder):
                item.add_marker(tier)
        if path in CLUSTERS:
            item.add_marker("clusters")
    yield
    # After them (pytest-django puts transactional tests last): each module's tests together, in
    # the order they had, the modules in run order. Every test still starts on the database as
    # the migrations left it, so no test depends on what ran before it. xdist's workers each sort
    # their own collection, and read the same timings: the controller writes them only at the end.
    first_seen: dict[str, int] = {}
    for index, item in enumerate(items):
        first_seen.setdefault(paths[item], index)
    tests = Counter(paths.values())
    took = config.cache.get(TEST_SECONDS, {}) if hasattr(config, "cache") else {}
    seconds: defaultdict[str, float] = defaultdict(float)
    for item, path in paths.items():
        seconds[path] += took.get(item.nodeid, 0.0)
    items.sort(
        key=lambda item: (run_order(paths[item], tests[paths[item]], seconds[paths[item]]), first_seen[paths[item]])
    )


@pytest.fixture(autouse=True)
def _isolated_cache_and_media(settings, tmp_path) -> None:
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    settings.MEDIA_ROOT = tmp_path / "media"
    # Rate-limit counters must not leak from one test into the next. Only local memory is
    # cleared: on Redis, clear() is FLUSHDB, which would take everyone else's keys too.
    assert isinstance(caches["default"], LocMemCache), settings.CACHES
    caches["default"].clear()


@pytest.fixture(autouse=True)
def _redis_keys_deleted():
    # Autouse, so set up first and torn down last: after the test's own processes have stopped.
    yield
    delete_made_keys()


@pytest.fixture(autouse=True)
def _never_the_real_services(settings) -> None:
    # Keys in a developer's environment must not send tests to Stripe or Replicate: payments
    # are off and the local renderer is on unless a test asks for a fake.
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = ""
    settings.STRIPE_API_BASE = ""
    settings.PAYMENTS_SANDBOX = False
    settings.REPLICATE_API_TOKENS = []
    settings.REPLICATE_BASE_URL = ""
    settings.LOCAL_RENDERER_ENABLED = True
    # Provider waits shortened: retries and polls behave the same, only faster.
    settings.PROVIDER_RETRY_BASE_DELAY = 0.05
    settings.PROVIDER_POLL_INITIAL = 0.02
    settings.PROVIDER_POLL_MAX = 0.1
    settings.JOB_POLL_INTERVAL = 0.1
    settings.JOB_POLLER_IDLE_SECONDS = 0
    settings.JOB_LOOK_AGAIN_SECONDS = 1


@pytest.fixture
def redis_url() -> str:
    # The Redis the tests may use (TEST_REDIS_URL, default database 0 on loopback). Tests give
    # their keys a prefix of their own (tests.redis_keys.new_prefix) and never flush: another run
    # may share this Redis.
    return os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _on_redis(settings, redis_url: str) -> None:
    # Production's cache backend on the tests' Redis, under a key prefix of this test's own.
    settings.CACHES = {
        "default": {
            "BACKEND": "core.cache.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": new_prefix(redis_url),
        }
    }


@pytest.fixture
def stopped_clock():
    """The wall clock held still through the test (time.monotonic and sleeps still run). A rate
    limit counts in fixed windows (django-ratelimit's minute starts at a second of its own for each
    key), so on a busy machine a burst of requests could otherwise straddle two windows and never
    reach the limit."""
    with time_machine.travel(time.time(), tick=False) as clock:
        yield clock


@pytest.fixture
def redis_cache(settings, redis_url) -> None:
    """The cache on Redis, as in production."""
    _on_redis(settings, redis_url)


@pytest.fixture(params=["locmem", "redis"])
def shared_cache(request, settings, redis_url):
    """The test runs twice: on local memory (development's one process) and on Redis (production's
    counters, shared by every web process), under a key prefix of its own."""
    if request.param == "redis":
        _on_redis(settings, redis_url)
    return request.param


@pytest.fixture
def creator(db):
    """A signed-up person with 10,000 credits."""
    from accounts.tests.factories import UserFactory
    from billing.services import credits_grant

    user = UserFactory()
    credits_grant(user=user, amount=10_000, key=f"purchase:test-{user.pk}")
    return user


@pytest.fixture
def sync_queue(monkeypatch):
    # django-q2 reads Q_CLUSTER once at import; its SYNC flag runs tasks inline instead.
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def fake_replicate(settings):
    from fakes.replicate import FakeReplicate

    with FakeReplicate(predict_seconds=0.05) as fake:
        settings.REPLICATE_API_TOKENS = ["r8_test_token"]
        settings.REPLICATE_BASE_URL = fake.url
        settings.REPLICATE_CREATE_WAIT = 1
        settings.REPLICATE_TIMEOUT = 5
        settings.REPLICATE_WEBHOOK_SECRET = ""
        yield fake


@pytest.fixture
def stripe_fake(settings):
    # Without the fields Stripe dropped in 2025 (invoice.subscription, ...): the code must read
    # the shapes of the API version the library pins.
    from billing.tests.stripe_kit import WEBHOOK_SECRET
    from fakes.stripe import FakeStripe

    with FakeStripe(legacy_fields=False) as fake:
        settings.STRIPE_SECRET_KEY = "sk_test_dreampixel"
        settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
        settings.STRIPE_API_BASE = fake.url
        yield fake


@pytest.fixture
def pack(stripe_fake):
    from billing.models import CreditPack

    pack = CreditPack.objects.create(
        name="Starter", credits=5_000, price_cents=500, currency="usd", stripe_price_id="price_test_starter"
    )
    stripe_fake.add_price(pack.stripe_price_id, pack.price_cents, pack.currency, product_name="Starter pack")
    return pack


@pytest.fixture
def plan(stripe_fake):
    from billing.models import Plan

    plan = Plan.objects.create(
        name="Plus", credits=15_000, price_cents=1_200, currency="usd", stripe_price_id="price_test_plus_monthly"
    )
    stripe_fake.add_price(plan.stripe_price_id, plan.price_cents, plan.currency, recurring=True, product_name="Plus")
    return plan


@pytest.fixture
def buyer(db):
    from accounts.tests.factories import UserFactory

    return UserFactory()


@pytest.fixture
def staff_user(db):
    """A superuser with an authenticator app: what the back office requires."""
    from allauth.account.models import EmailAddress
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    from accounts.models import User

    user = User.objects.create_superuser(email="ops@dreampixel.example", password="x-staff-password-1")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    user.totp_secret = generate_totp_secret()
    TOTP.activate(user, user.totp_secret)
    return user


@pytest.fixture
def staff_client(staff_user):
    # Its own client, so a test can act as staff and as a customer side by side.
    from django.test import Client

    client = Client()
    client.force_login(staff_user)
    client.staff = staff_user
    return client
