"""Suite-wide test setup: PostgreSQL only, fast hashing, plain static files, fresh cache and media."""

from __future__ import annotations

import os
import uuid

import pytest
from django.conf import settings


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


@pytest.fixture(autouse=True)
def _isolated_cache_and_media(settings, tmp_path) -> None:
    from django.core.cache import cache

    settings.MEDIA_ROOT = tmp_path / "media"
    cache.clear()  # rate-limit counters must not leak from one test into the next


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
    # their keys a prefix of their own and never flush: another run may share this Redis.
    return os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _on_redis(settings, redis_url: str) -> None:
    # Production's cache backend on the tests' Redis, under a key prefix of this test's own.
    settings.CACHES = {
        "default": {
            "BACKEND": "core.cache.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": f"test-{uuid.uuid4().hex}",
        }
    }


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
