"""Deleting an account ends its plan at Stripe; a renewal that still arrives grants nothing and is flagged."""

from __future__ import annotations

import contextlib
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from billing.models import Subscription
from billing.services import balance_of
from billing.tests.stripe_kit import deliver, start_checkout

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("sync_queue")]

DAY = 86_400


@pytest.fixture
def subscribed(client, stripe_fake, plan, buyer) -> str:
    completed = stripe_fake.complete_checkout(start_checkout(buyer, plan))
    assert deliver(client, completed).status_code == 200
    assert balance_of(buyer) == 15_000
    return completed["data"]["object"]["subscription"]


def _reconcile_json(capsys, *args) -> dict:
    capsys.readouterr()
    with contextlib.suppress(CommandError):  # it exits 1 while something is found
        call_command("reconcile", "--json", *args)
    return json.loads(capsys.readouterr().out)


def test_the_delete_page_says_what_happens_to_the_plan_and_the_credits(client, subscribed, buyer):
    client.force_login(buyer)
    page = client.get(reverse("delete_account")).content.decode()
    assert "Your monthly plan (Plus) is canceled at once" in page
    assert "Your unused credits (15,000) are lost" in page


def test_deleting_an_account_cancels_its_plan_at_stripe(client, stripe_fake, subscribed, buyer):
    client.force_login(buyer)
    response = client.post(reverse("delete_account"), {"confirm_email": buyer.email})
    assert response.status_code == 302

    assert stripe_fake.get(subscribed)["status"] == "canceled"
    assert stripe_fake.find_requests("DELETE", f"/v1/subscriptions/{subscribed}")
    assert Subscription.objects.get(subscription_id=subscribed).status == "canceled"
    # The webhook about it arriving later changes nothing.
    assert deliver(client, stripe_fake.events_of_type("customer.subscription.deleted")[-1]).status_code == 200
    assert Subscription.objects.get(subscription_id=subscribed).status == "canceled"


def test_a_renewal_for_a_deleted_account_grants_nothing_and_reconcile_flags_and_refunds_it(
    client, settings, stripe_fake, subscribed, buyer, capsys
):
    # Stripe cannot be reached at the moment of deletion: the plan keeps running there.
    stripe_fake.fail_requests("GET", "/v1/subscriptions", status=500)
    client.force_login(buyer)
    client.post(reverse("delete_account"), {"confirm_email": buyer.email})
    assert stripe_fake.get(subscribed)["status"] == "active"

    stripe_fake.advance_time(30 * DAY)
    renewal = stripe_fake.pay_invoice(subscribed)
    assert deliver(client, renewal).status_code == 200
    assert balance_of(buyer) == 15_000  # nothing granted

    report = _reconcile_json(capsys)
    finding = report["findings"]["stripe_deleted_account_billed"]
    assert finding["count"] == 2 and finding["fixable"]
    assert {e["state"] for e in finding["examples"]} == {"still running", "paid after deletion, not refunded"}
    # It is not reported as a paid invoice missing its credits: those are meant to be withheld.
    assert report["findings"]["stripe_paid_invoice_without_grant"]["count"] == 0

    _reconcile_json(capsys, "--fix")
    assert stripe_fake.get(subscribed)["status"] == "canceled"
    refunds = stripe_fake.objects("refund")
    assert len(refunds) == 1 and refunds[0]["amount"] == 1_200
    # The refund's own webhook takes nothing back: nothing was granted for it.
    deliver(client, stripe_fake.events_of_type("charge.refunded")[-1])
    assert balance_of(buyer) == 15_000
    report = _reconcile_json(capsys, "--fix")
    assert report["findings"]["stripe_deleted_account_billed"]["count"] == 0
    assert len(stripe_fake.objects("refund")) == 1  # once
