"""Stripe test kit: the real `stripe` library against FakeStripe on loopback, real webhook signatures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from accounts.tests.factories import UserFactory
from billing.models import CreditPack, Plan
from billing.tests.stripe_kit import WEBHOOK_SECRET
from tests.fakes.stripe import FakeStripe


@pytest.fixture(autouse=True)
def _never_the_real_stripe(settings) -> None:
    # Keys in a developer's environment must not send tests to Stripe: payments are off unless
    # a test asks for the fake.
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = ""
    settings.STRIPE_API_BASE = ""


@pytest.fixture
def stripe_fake(settings) -> Iterator[FakeStripe]:
    # Without the fields Stripe dropped in 2025 (invoice.subscription, ...): the code must read
    # the shapes of the API version the library pins.
    with FakeStripe(legacy_fields=False) as fake:
        settings.STRIPE_SECRET_KEY = "sk_test_dreampixel"
        settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
        settings.STRIPE_API_BASE = fake.url
        yield fake


@pytest.fixture
def pack(stripe_fake: FakeStripe) -> CreditPack:
    pack = CreditPack.objects.create(
        name="Starter", credits=5_000, price_cents=500, currency="usd", stripe_price_id="price_test_starter"
    )
    stripe_fake.add_price(pack.stripe_price_id, pack.price_cents, pack.currency, product_name="Starter pack")
    return pack


@pytest.fixture
def plan(stripe_fake: FakeStripe) -> Plan:
    plan = Plan.objects.create(
        name="Plus", credits=15_000, price_cents=1_200, currency="usd", stripe_price_id="price_test_plus_monthly"
    )
    stripe_fake.add_price(plan.stripe_price_id, plan.price_cents, plan.currency, recurring=True, product_name="Plus")
    return plan


@pytest.fixture
def buyer():
    return UserFactory()
