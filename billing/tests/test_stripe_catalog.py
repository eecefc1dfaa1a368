from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.urls import reverse

from billing.models import CreditPack, Plan
from billing.money import format_money

pytestmark = pytest.mark.django_db

seed_migration = importlib.import_module("billing.migrations.0004_seed_packs_and_plans")


def test_the_seed_offers_three_packs_and_two_plans_with_placeholder_prices_once():
    CreditPack.objects.all().delete()
    Plan.objects.all().delete()
    seed_migration.seed(apps, None)
    seed_migration.seed(apps, None)  # a second run adds nothing
    packs = [(p.name, p.credits, format_money(p.price_cents, p.currency)) for p in CreditPack.objects.all()]
    plans = [(p.name, p.credits, format_money(p.price_cents, p.currency)) for p in Plan.objects.all()]
    assert packs == [("Starter", 5_000, "$5.00"), ("Creator", 12_000, "$10.00"), ("Studio", 30_000, "$20.00")]
    assert plans == [("Plus", 15_000, "$12.00"), ("Pro", 40_000, "$25.00")]
    ids = [p.stripe_price_id for p in [*CreditPack.objects.all(), *Plan.objects.all()]]
    assert all(i.startswith("price_REPLACE_ME_") for i in ids)


def test_money_is_formatted_from_integer_cents():
    assert format_money(500, "usd") == "$5.00"
    assert format_money(123_456, "eur") == "€1,234.56"
    assert format_money(5, "gbp") == "£0.05"
    assert format_money(1_200, "jpy") == "1,200 JPY"
    assert format_money(999, "chf") == "9.99 CHF"


def test_staff_edit_packs_and_plans_in_the_admin(staff_client):
    client = staff_client
    pack = CreditPack.objects.create(name="Big", credits=1_000, price_cents=300, stripe_price_id="price_big")
    page = client.get(reverse("admin:billing_creditpack_changelist")).content.decode()
    assert "$3.00" in page and "price_big" in page
    response = client.post(
        reverse("admin:billing_creditpack_change", args=[pack.pk]),
        {"name": "Big", "credits": 2_000, "price_cents": 300, "currency": "usd", "stripe_price_id": "price_live_1",
         "active": "", "order": 5, "staff_reason": "Launch pricing"},
    )  # fmt: skip
    assert response.status_code == 302
    pack.refresh_from_db()
    assert (pack.credits, pack.stripe_price_id, pack.active, pack.order) == (2_000, "price_live_1", False, 5)
    from accounts.models import StaffAction

    change = StaffAction.objects.get(kind="price", reference=f"creditpack:{pack.pk}")
    assert change.reason == "Launch pricing" and change.details["changes"]["credits"] == [1_000, 2_000]
    assert client.get(reverse("admin:billing_plan_changelist")).status_code == 200
