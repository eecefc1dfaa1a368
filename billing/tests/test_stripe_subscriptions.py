from __future__ import annotations

import pytest
from django.urls import reverse

from billing.models import Subscription
from billing.services import balance_of
from billing.tests.stripe_kit import deliver, ledger, start_checkout

# Webhook work runs in a task: inline here, so each delivery has done its work when it returns.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sync_queue")]

DAY = 86_400


@pytest.fixture
def subscribed(stripe_fake, plan, buyer) -> str:
    """The buyer subscribed to Plus through Checkout; returns the subscription id. No webhook delivered yet."""
    completed = stripe_fake.complete_checkout(start_checkout(buyer, plan))
    return completed["data"]["object"]["subscription"]


def test_each_paid_invoice_grants_the_plans_credits_once(client, stripe_fake, subscribed, buyer):
    first = stripe_fake.events_of_type("invoice.paid")[-1]
    assert deliver(client, first).status_code == 200
    assert balance_of(buyer) == 15_000

    stripe_fake.advance_time(30 * DAY)
    renewal = stripe_fake.pay_invoice(subscribed)
    assert deliver(client, renewal).status_code == 200
    assert balance_of(buyer) == 30_000

    for event in (first, renewal, first, renewal):
        assert deliver(client, event).status_code == 200
    # checkout.session.completed grants the first invoice too, under the same key.
    deliver(client, stripe_fake.events_of_type("checkout.session.completed")[-1])

    invoices = [first["data"]["object"]["id"], renewal["data"]["object"]["id"]]
    assert ledger(buyer) == sorted((f"invoice:{i}", "subscription_grant", 15_000) for i in invoices)
    assert balance_of(buyer) == 30_000


def test_a_failed_renewal_grants_nothing_and_the_page_says_the_payment_is_overdue(
    client, stripe_fake, subscribed, buyer
):
    deliver(client, stripe_fake.events_of_type("checkout.session.completed")[-1])
    assert balance_of(buyer) == 15_000

    failed = stripe_fake.fail_invoice(subscribed)
    assert deliver(client, failed).status_code == 200
    deliver(client, stripe_fake.events_of_type("customer.subscription.updated")[-1])
    assert balance_of(buyer) == 15_000

    client.force_login(buyer)
    page = client.get(reverse("billing")).content.decode()
    assert "Payment overdue" in page and "Your last payment did not go through" in page


def test_the_billing_page_follows_the_plan_through_renewal_cancellation_and_end(client, stripe_fake, subscribed, buyer):
    client.force_login(buyer)
    deliver(client, stripe_fake.events_of_type("customer.subscription.created")[-1])
    row = Subscription.objects.get(subscription_id=subscribed)
    assert (row.user, row.plan.name, row.status, row.cancel_at_period_end) == (buyer, "Plus", "active", False)
    period_end = stripe_fake.get(subscribed)["items"]["data"][0]["current_period_end"]
    assert int(row.current_period_end.timestamp()) == period_end
    page = client.get(reverse("billing")).content.decode()
    assert "Renews on" in page and "15,000 credits a month" in page

    deliver(client, stripe_fake.update_subscription(subscribed, cancel_at_period_end=True))
    page = client.get(reverse("billing")).content.decode()
    assert "Canceled: it ends on" in page

    deleted = stripe_fake.cancel_subscription(subscribed)
    deliver(client, deleted)
    row.refresh_from_db()
    assert row.status == "canceled"
    page = client.get(reverse("billing")).content.decode()
    assert "Subscribe to Plus" in page  # a new plan may be bought again

    # A late copy of an older update re-reads Stripe, which says canceled: it stays canceled.
    deliver(client, stripe_fake.events_of_type("customer.subscription.updated")[0])
    row.refresh_from_db()
    assert row.status == "canceled"


def test_a_subscription_checkout_shows_the_plan_credits_on_the_success_page(client, stripe_fake, subscribed, buyer):
    session_id = stripe_fake.events_of_type("checkout.session.completed")[-1]["data"]["object"]["id"]
    deliver(client, stripe_fake.events_of_type("checkout.session.completed")[-1])
    client.force_login(buyer)
    page = client.get(reverse("checkout_success"), {"session_id": session_id}).content.decode()
    assert "15,000 credits</strong> were added" in page
    assert "Your Plus plan is active" in page
