from __future__ import annotations

import pytest

from accounts.tests.factories import UserFactory
from billing.services import credits_grant


@pytest.fixture
def creator(db):
    user = UserFactory()
    credits_grant(user=user, amount=10_000, key=f"purchase:test-{user.pk}")
    return user


@pytest.fixture
def sync_queue(monkeypatch):
    # django-q2 reads Q_CLUSTER once at import; its SYNC flag runs tasks inline instead.
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture(autouse=True)
def _fast_provider_timings(settings):
    settings.PROVIDER_RETRY_BASE_DELAY = 0.05
    settings.PROVIDER_POLL_INITIAL = 0.02
    settings.PROVIDER_POLL_MAX = 0.1


@pytest.fixture
def fake_replicate(settings):
    from tests.fakes.replicate import FakeReplicate

    with FakeReplicate(predict_seconds=0.05) as fake:
        settings.REPLICATE_API_TOKENS = ["r8_test_token"]
        settings.REPLICATE_BASE_URL = fake.url
        settings.REPLICATE_CREATE_WAIT = 1
        settings.REPLICATE_TIMEOUT = 5
        settings.REPLICATE_WEBHOOK_SECRET = ""
        yield fake
