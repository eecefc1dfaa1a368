"""One plan per person: one plan checkout at a time, and a second plan that bills anyway is undone."""

from __future__ import annotations

import contextlib
import json
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from billing.models import CheckoutSession, Plan, Subscription
from billing.services import balance_of
from billing.stripe_client import stripe_client
from billing.tests.stripe_kit import deliver, ledger, start_checkout

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sync_queue")]


@pytest.fixture
def pro(stripe_fake):
    plan = Plan.objects.create(
        name="Pro", credits=40_000, price_cents=2_900, currency="usd", stripe_price_id="price_test_pro_monthly"
    )
    stripe_fake.add_price(plan.stripe_price_id, plan.price_cents, plan.currency, recurring=True, product_name="Pro")
    return plan


def press_buy(client: Client, plan: Plan) -> str:
    # Each page view draws its own attempt, so two tabs are two attempts.
    return client.post(reverse("buy_plan", args=[plan.pk]), {"attempt": uuid.uuid4().hex})["Location"]


def raced_checkout(user, plan: Plan) -> str:
    """A plan checkout created at the same moment as another (two tabs, two web servers): made with
    the same parameters as checkout_start, past the check that refuses a second one."""
    session = stripe_client().v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": user.stripe_customer.customer_id,
            "client_reference_id": str(user.pk),
            "line_items": [{"price": plan.stripe_price_id, "quantity": 1}],
            "success_url": "http://testserver/billing/checkout/success/?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "http://testserver/billing/checkout/cancel/",
            "metadata": {"user_id": str(user.pk), "credits": str(plan.credits), "plan_id": str(plan.pk)},
            "subscription_data": {"metadata": {"user_id": str(user.pk), "plan_id": str(plan.pk)}},
        }
    )
    CheckoutSession.objects.create(session_id=session.id, user=user, mode="subscription", plan=plan,
                                   credits=plan.credits, amount_cents=plan.price_cents, currency="usd")  # fmt: skip
    return session.id


def reconcile(capsys, *args: str) -> dict:
    capsys.readouterr()
    with contextlib.suppress(CommandError):  # exits 1 while something is found
        call_command("reconcile", "--json", *args)
    return json.loads(capsys.readouterr().out)


def test_a_second_press_continues_the_open_plan_checkout_instead_of_opening_another(client, stripe_fake, plan, buyer):
    client.force_login(buyer)
    first, second = press_buy(client, plan), press_buy(client, plan)
    assert first == second
    assert len(stripe_fake.objects("checkout.session")) == 1


def test_choosing_another_plan_expires_the_open_checkout_first(client, stripe_fake, plan, pro, buyer):
    client.force_login(buyer)
    plus_session = press_buy(client, plan).rsplit("/", 1)[-1]
    pro_session = press_buy(client, pro).rsplit("/", 1)[-1]
    assert pro_session != plus_session
    assert stripe_fake.get(plus_session)["status"] == "expired"
    assert CheckoutSession.objects.get(session_id=plus_session).payment_state == "expired"
    with pytest.raises(ValueError, match="not open"):
        stripe_fake.complete_checkout(plus_session)  # it can no longer be paid


def test_a_plan_checkout_paid_but_not_yet_confirmed_refuses_a_second(client, stripe_fake, plan, pro, buyer):
    client.force_login(buyer)
    session_id = press_buy(client, plan).rsplit("/", 1)[-1]
    stripe_fake.complete_checkout(session_id)  # paid; no webhook has arrived yet
    response = client.post(reverse("buy_plan", args=[pro.pk]), {"attempt": uuid.uuid4().hex}, follow=True)
    assert "You already have a monthly plan" in response.content.decode()
    assert len(stripe_fake.objects("checkout.session")) == 1


def test_two_plans_paid_at_once_end_with_the_later_canceled_refunded_and_clawed_back(
    capsys, client, stripe_fake, plan, buyer
):
    first = start_checkout(buyer, plan)
    second = raced_checkout(buyer, plan)
    stripe_fake.complete_checkout(first)
    stripe_fake.complete_checkout(second)
    for event in list(stripe_fake.events):
        assert deliver(client, event).status_code == 200

    kept, duplicate = (stripe_fake.get(s)["subscription"] for s in (first, second))
    assert stripe_fake.get(kept)["status"] == "active"
    assert stripe_fake.get(duplicate)["status"] == "canceled"
    assert Subscription.objects.get(subscription_id=duplicate).status == "canceled"
    [refund] = stripe_fake.objects("refund")
    assert refund["amount"] == plan.price_cents
    assert balance_of(buyer) == plan.credits  # one month of one plan
    assert [kind for _, kind, _ in ledger(buyer)].count("clawback") == 1
    # The refund's own webhooks, delivered late, take nothing more.
    for event in stripe_fake.events_of_type("charge.refunded"):
        deliver(client, event)
    assert balance_of(buyer) == plan.credits
    assert reconcile(capsys)["findings"]["stripe_plan_duplicated"]["count"] == 0


def test_reconcile_reports_two_plans_and_fix_cancels_and_refunds_the_later(capsys, stripe_fake, plan, buyer):
    first = start_checkout(buyer, plan)
    second = raced_checkout(buyer, plan)
    stripe_fake.complete_checkout(first)
    stripe_fake.complete_checkout(second)  # and no webhook arrives
    kept, duplicate = (stripe_fake.get(s)["subscription"] for s in (first, second))

    finding = reconcile(capsys)["findings"]["stripe_plan_duplicated"]
    assert finding["count"] == 1 and finding["fixable"]
    assert finding["examples"][0]["subscription"] == duplicate

    report = reconcile(capsys, "--fix")
    assert report["ok"], report
    assert report["fixed"]["stripe_plan_duplicated"] == 1
    assert stripe_fake.get(kept)["status"] == "active"
    assert stripe_fake.get(duplicate)["status"] == "canceled"
    assert len(stripe_fake.objects("refund")) == 1
    assert balance_of(buyer) == plan.credits
    assert reconcile(capsys, "--fix")["fixed"] == {}


def test_reconcile_finds_a_second_plan_next_to_one_older_than_its_window(capsys, client, stripe_fake, plan, buyer):
    stripe_fake.set_time(stripe_fake.now() - 10 * 86_400)  # the first plan began ten days ago
    first = start_checkout(buyer, plan)
    stripe_fake.complete_checkout(first)
    for event in list(stripe_fake.events):
        deliver(client, event)
    stripe_fake.set_time(None)
    second = raced_checkout(buyer, plan)
    stripe_fake.complete_checkout(second)  # its webhooks are lost

    finding = reconcile(capsys)["findings"]["stripe_plan_duplicated"]
    assert finding["count"] == 1
    assert finding["examples"][0]["subscription"] == stripe_fake.get(second)["subscription"]
