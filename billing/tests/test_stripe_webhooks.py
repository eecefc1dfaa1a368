from __future__ import annotations

import time

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from billing.models import LedgerEntry, StripeEvent
from billing.services import balance_of
from billing.tests.stripe_kit import WEBHOOK_URL, deliver, ledger, run_at_once, start_checkout
from fakes.stripe import event_payload, sign

# Webhook work runs in a task: inline here, so each delivery has done its work when it returns.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sync_queue")]


@pytest.fixture
def paid_event(stripe_fake, pack, buyer) -> dict:
    return stripe_fake.complete_checkout(start_checkout(buyer, pack))


def post(client: Client, body: bytes, header: str | None):
    headers = {"stripe-signature": header} if header is not None else {}
    return client.post(WEBHOOK_URL, body, content_type="application/json", headers=headers)


def test_bad_signatures_stale_timestamps_and_malformed_bodies_are_rejected(client, stripe_fake, paid_event, buyer):
    body = event_payload(paid_event)
    secret = "whsec_test_dreampixel_webhooks"
    rejected = {
        "no signature": post(client, body, None),
        "wrong secret": post(client, body, sign(body, "whsec_someone_else")),
        "tampered body": post(client, body.replace(b'"paid"', b'"PAID"'), sign(body, secret)),
        "stale timestamp": post(client, body, sign(body, secret, timestamp=int(time.time()) - 301)),
        "not JSON": post(client, b"{not json", sign(b"{not json", secret)),
        "not an event": post(client, b'{"hello": "world"}', sign(b'{"hello": "world"}', secret)),
        "not UTF-8": post(client, b"\xff\xfe", "t=1,v1=00"),
    }
    assert {name: r.status_code for name, r in rejected.items()} == dict.fromkeys(rejected, 400)
    assert not StripeEvent.objects.exists()
    assert balance_of(buyer) == 0
    assert client.get(WEBHOOK_URL).status_code == 405

    # The same body, signed now with the right secret, is accepted.
    assert post(client, body, sign(body, secret)).status_code == 200
    assert balance_of(buyer) == 5_000


def test_events_it_does_not_handle_are_acknowledged_and_change_nothing(client, stripe_fake, pack, buyer):
    session_id = start_checkout(buyer, pack)
    stripe_fake.complete_checkout(session_id)
    requests_before = len(stripe_fake.requests)
    for event in stripe_fake.events_of_type("payment_intent.succeeded") + stripe_fake.events_of_type(
        "charge.succeeded"
    ):
        response = deliver(client, event)
        assert response.status_code == 200
        assert StripeEvent.objects.get(event_id=event["id"]).status == "ignored"
    assert len(stripe_fake.requests) == requests_before  # answered without asking Stripe anything
    assert balance_of(buyer) == 0


def test_a_duplicate_of_a_processed_event_is_acknowledged_and_does_nothing(client, stripe_fake, paid_event, buyer):
    assert deliver(client, paid_event).json() == {"received": True, "status": "processed"}
    requests_before = len(stripe_fake.requests)
    assert deliver(client, paid_event).json() == {"received": True, "status": "processed"}
    assert len(stripe_fake.requests) == requests_before
    event = StripeEvent.objects.get(event_id=paid_event["id"])
    assert (event.type, event.object_id, event.attempts) == (
        "checkout.session.completed",
        paid_event["data"]["object"]["id"],
        1,
    )
    assert event.payload == paid_event
    assert balance_of(buyer) == 5_000


def test_a_failing_handler_answers_500_grants_nothing_and_the_retry_succeeds(client, stripe_fake, paid_event, buyer):
    # Stripe's API has trouble while we re-read the session.
    stripe_fake.fail_requests("GET", r"/v1/checkout/sessions/cs_test_\w+", status=500)
    response = deliver(client, paid_event)
    assert response.status_code == 500
    event = StripeEvent.objects.get(event_id=paid_event["id"])
    assert event.status == "failed" and "APIError" in event.error
    assert balance_of(buyer) == 0 and not LedgerEntry.objects.exists()

    # Stripe delivers it again later.
    assert deliver(client, paid_event).status_code == 200
    event.refresh_from_db()
    assert (event.status, event.error, event.attempts) == ("processed", "", 2)
    assert balance_of(buyer) == 5_000


@pytest.mark.django_db(transaction=True)
def test_five_concurrent_deliveries_of_one_event_grant_once(stripe_fake, pack):
    buyer = User.objects.create_user(email="racer@example.com", password="x")
    event = stripe_fake.complete_checkout(start_checkout(buyer, pack))
    responses = run_at_once(5, lambda i: deliver(Client(), event))
    assert [r.status_code for r in responses] == [200] * 5
    assert balance_of(buyer) == 5_000
    assert ledger(buyer) == [(f"purchase:{event['data']['object']['id']}", "purchase", 5_000)]
    assert StripeEvent.objects.get().status == "processed"


def test_an_invoice_for_an_unknown_price_fails_until_staff_fix_the_plan(client, staff_client, stripe_fake, plan, buyer):
    session_id = start_checkout(buyer, plan)
    stripe_fake.complete_checkout(session_id)
    paid = stripe_fake.events_of_type("invoice.paid")[-1]
    plan.stripe_price_id = "price_typo"
    plan.save()

    response = deliver(client, paid)
    assert response.status_code == 500
    event = StripeEvent.objects.get(event_id=paid["id"])
    assert event.status == "failed"
    assert "price_test_plus_monthly, which no plan has" in event.error
    assert balance_of(buyer) == 0

    # Staff correct the price id, then press "Process again" in the admin.
    plan.stripe_price_id = "price_test_plus_monthly"
    plan.save()
    client = staff_client
    changelist = reverse("admin:billing_stripeevent_changelist")
    response = client.post(changelist, {"action": "process_again", "_selected_action": [event.pk]}, follow=True)
    assert "processed." in response.content.decode()
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("processed", 2)
    assert balance_of(buyer) == 15_000

    # Processing it once more changes nothing.
    client.post(changelist, {"action": "process_again", "_selected_action": [event.pk]})
    assert balance_of(buyer) == 15_000


def test_stripe_events_are_readable_but_read_only_in_the_admin(staff_client, stripe_fake, paid_event):
    client = staff_client
    deliver(client, paid_event)
    event = StripeEvent.objects.get()
    detail = client.get(reverse("admin:billing_stripeevent_change", args=[event.pk])).content.decode()
    assert paid_event["id"] in detail and "checkout.session.completed" in detail and "payment_status" in detail
    assert client.get(reverse("admin:billing_stripeevent_add")).status_code == 403
    assert client.post(reverse("admin:billing_stripeevent_delete", args=[event.pk])).status_code == 403
    client.post(reverse("admin:billing_stripeevent_change", args=[event.pk]), {"status": "failed"})
    event.refresh_from_db()
    assert event.status == "processed"
    for name in ("stripecustomer", "subscription", "checkoutsession", "creditpack", "plan"):
        assert client.get(reverse(f"admin:billing_{name}_changelist")).status_code == 200


def test_a_session_whose_customer_belongs_to_someone_else_is_refused(client, stripe_fake, pack, buyer):
    from accounts.tests.factories import UserFactory
    from billing.stripe_services import stripe_customer_ensure

    other = UserFactory()
    # A session naming the buyer but charged to another user's customer: never grant it to anyone.
    session = stripe_fake.client().v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "customer": stripe_customer_ensure(user=other),
            "line_items": [{"price": pack.stripe_price_id, "quantity": 1}],
            "metadata": {"user_id": str(buyer.pk), "credits": "5000"},
        }
    )
    response = deliver(client, stripe_fake.complete_checkout(session.id))
    assert response.status_code == 500
    assert f"belongs to user {other.pk}, but the metadata names user {buyer.pk}" in StripeEvent.objects.get().error
    assert not LedgerEntry.objects.exists()
