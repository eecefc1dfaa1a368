"""One price list: every page shows the catalog's prices (what jobs are charged), packs and plans with money."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.tests.factories import UserFactory
from billing.models import CreditPack, Plan
from billing.services import credits_grant
from generation.models import AIModel
from generation.tests.factories import AIModelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def image_at_750(db):
    # Only this test's catalog is offered (the migrations' seeded models are switched off)...
    AIModel.objects.update(enabled=False)
    for key, kind, cost, seconds in [
        ("p-image", "image", 500, None), ("p-edit", "image_edit", 1_000, None),
        ("p-video-3", "video", 2_000, 3), ("p-video-5", "video", 3_000, 5),
        ("p-replicate", "image", 100, None),  # not offered: no Replicate token here
    ]:  # fmt: skip
        AIModelFactory(key=key, kind=kind, credit_cost=cost, duration_seconds=seconds,
                       provider="replicate" if key == "p-replicate" else "local")  # fmt: skip
    # ...then staff change two prices in the admin.
    AIModel.objects.filter(key="p-image").update(credit_cost=750)
    AIModel.objects.filter(key="p-video-5").update(credit_cost=3_500)


def test_the_landing_page_shows_the_catalogs_prices(client, image_at_750):
    page = client.get(reverse("landing")).content.decode()
    assert "750 <span>credits</span>" in page
    assert "3,500 <span>credits</span>" in page
    assert ">500 <span>" not in page and ">100 <span>" not in page


def test_a_disabled_model_no_longer_sets_the_price(client, image_at_750):
    AIModel.objects.create(key="cheap-image", name="Cheap", kind="image", provider="local", credit_cost=300,
                           aspect_ratios={"square": "1:1"}, enabled=False)  # fmt: skip
    assert "300 <span>credits</span>" not in client.get(reverse("landing")).content.decode()
    AIModel.objects.filter(key="cheap-image").update(enabled=True)
    assert "300 <span>credits</span>" in client.get(reverse("landing")).content.decode()


def test_the_billing_page_and_the_low_balance_notice_use_the_catalogs_prices(client, image_at_750):
    user = UserFactory()
    credits_grant(user=user, amount=700, key="purchase:price-list")
    client.force_login(user)
    page = client.get(reverse("billing")).content.decode()
    assert "An image costs 750." in page
    assert "A 5 s video costs 3,500." in page
    # 700 is enough for no image at 750 (it was, at the old constant of 500).
    assert "You are running low" in page and "(750)" in page


def test_packs_and_plans_are_shown_with_their_money_price(client):
    CreditPack.objects.create(name="Starter", credits=5_000, price_cents=500, stripe_price_id="price_l_starter")
    Plan.objects.create(name="Plus", credits=15_000, price_cents=1_200, stripe_price_id="price_l_plus")
    CreditPack.objects.create(name="Old", credits=1, price_cents=1, stripe_price_id="price_l_old", active=False)
    page = client.get(reverse("landing")).content.decode()
    assert "Starter: $5.00 for 5,000 credits" in page
    assert "Plus plan: $12.00 a month for 15,000 credits a month" in page
    assert "Old:" not in page
