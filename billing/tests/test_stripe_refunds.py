from __future__ import annotations

import pytest
from django.test import Client

from accounts.tests.factories import UserFactory
from billing.models import CreditPack, LedgerEntry, StripeEvent
from billing.services import InsufficientCredits, balance_of, credits_charge
from billing.stripe_services import credits_share
from billing.tests.stripe_kit import deliver, ledger, relabel, start_checkout

# Webhook work runs in a task: inline here, so each delivery has done its work when it returns.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sync_queue")]


def paid_pack(stripe_fake, user, pack) -> tuple[dict, str]:
    """A paid pack purchase (no webhook delivered yet): (checkout.session.completed event, payment intent id)."""
    completed = stripe_fake.complete_checkout(start_checkout(user, pack))
    return completed, completed["data"]["object"]["payment_intent"]


def test_a_refund_after_the_credits_were_spent_leaves_a_debt_that_blocks_new_jobs(client, stripe_fake, pack, buyer):
    completed, payment_intent = paid_pack(stripe_fake, buyer, pack)
    deliver(client, completed)
    credits_charge(user=buyer, amount=4_500, key="charge:job-1", reference="job:1")
    assert balance_of(buyer) == 500

    refunded, refund = stripe_fake.refund(payment_intent)
    assert deliver(client, refunded).status_code == 200
    assert balance_of(buyer) == -4_500
    clawback = LedgerEntry.objects.get(idempotency_key=f"clawback:{refund['id']}")
    assert (clawback.kind, clawback.amount, clawback.reference) == ("clawback", -5_000, f"refund:{refund['id']}")
    assert "Payment refunded ($5.00 of $5.00)" in clawback.memo

    # Replays, and the refund's other events, claw back nothing more.
    for event in [refunded, refunded, *stripe_fake.events_of_type("refund.created")]:
        assert deliver(client, event).status_code == 200
    assert balance_of(buyer) == -4_500

    # New jobs are refused until a top-up covers the debt and the job.
    with pytest.raises(InsufficientCredits):
        credits_charge(user=buyer, amount=500, key="charge:job-2", reference="job:2")
    client.force_login(buyer)
    assert "Your balance is below zero" in client.get("/billing/").content.decode()

    big = CreditPack.objects.create(name="Studio", credits=30_000, price_cents=2_000, stripe_price_id="price_t_studio")
    stripe_fake.add_price(big.stripe_price_id, 2_000, "usd")
    deliver(client, paid_pack(stripe_fake, buyer, big)[0])
    assert balance_of(buyer) == 25_500
    credits_charge(user=buyer, amount=500, key="charge:job-2", reference="job:2")
    assert balance_of(buyer) == 25_000


def test_partial_refunds_claw_back_in_proportion_and_add_up_to_the_whole(client, stripe_fake, buyer):
    # 1,000 credits for $3.00: each $1.00 refund is a third, 333.33... credits.
    pack = CreditPack.objects.create(name="Odd", credits=1_000, price_cents=300, stripe_price_id="price_t_odd")
    stripe_fake.add_price(pack.stripe_price_id, 300, "usd")
    completed, payment_intent = paid_pack(stripe_fake, buyer, pack)
    deliver(client, completed)

    taken = []
    for _ in range(3):
        stripe_fake.advance_time(60)
        event, refund = stripe_fake.refund(payment_intent, amount=100)
        deliver(client, event)
        deliver(client, event)  # every refund is clawed back once
        taken.append(-LedgerEntry.objects.get(idempotency_key=f"clawback:{refund['id']}").amount)

    # Rounded on their own the thirds would leave one credit behind (333 x 3 = 999).
    assert taken == [333, 334, 333]
    assert balance_of(buyer) == 0


def test_credits_share_rounds_half_up():
    assert credits_share(credits=5_000, part_cents=500, whole_cents=500) == 5_000
    assert credits_share(credits=5_000, part_cents=1, whole_cents=500) == 10
    assert credits_share(credits=1_000, part_cents=100, whole_cents=300) == 333
    assert credits_share(credits=1_000, part_cents=200, whole_cents=300) == 667
    assert credits_share(credits=3, part_cents=1, whole_cents=2) == 2  # 1.5 rounds up
    assert credits_share(credits=10, part_cents=0, whole_cents=500) == 0


def test_a_refund_before_the_purchase_event_ends_in_the_same_ledger_as_in_order(stripe_fake, pack):
    in_order, reversed_order = UserFactory(), UserFactory()
    client = Client()

    completed, payment_intent = paid_pack(stripe_fake, in_order, pack)
    refunded, _ = stripe_fake.refund(payment_intent, amount=200)
    deliver(client, completed)
    deliver(client, refunded)

    completed_2, payment_intent_2 = paid_pack(stripe_fake, reversed_order, pack)
    refunded_2, refund_2 = stripe_fake.refund(payment_intent_2, amount=200)
    deliver(client, refunded_2)  # the refund arrives first: the purchase is fulfilled, then clawed back
    session_2 = completed_2["data"]["object"]["id"]
    assert ledger(reversed_order) == sorted(
        [(f"purchase:{session_2}", "purchase", 5_000), (f"clawback:{refund_2['id']}", "clawback", -2_000)]
    )
    deliver(client, completed_2)  # then the completion: already done

    def shape(user):
        return sorted((key.split(":")[0], kind, amount) for key, kind, amount in ledger(user))

    assert (
        shape(in_order) == shape(reversed_order) == [("clawback", "clawback", -2_000), ("purchase", "purchase", 5_000)]
    )
    assert balance_of(in_order) == balance_of(reversed_order) == 3_000


def test_a_lost_dispute_claws_back_once_and_a_won_one_gives_the_credits_back(client, stripe_fake, pack):
    loser, winner = UserFactory(), UserFactory()

    completed, payment_intent = paid_pack(stripe_fake, loser, pack)
    deliver(client, completed)
    opened = stripe_fake.dispute(payment_intent)
    deliver(client, opened)
    assert balance_of(loser) == 0  # the bank took the money back at once
    dispute_id = opened["data"]["object"]["id"]
    for event in (stripe_fake.close_dispute(dispute_id, won=False), opened):
        deliver(client, event)
    assert ledger(loser) == sorted(
        [
            (f"purchase:{completed['data']['object']['id']}", "purchase", 5_000),
            (f"clawback:{dispute_id}", "clawback", -5_000),
        ]
    )

    completed, payment_intent = paid_pack(stripe_fake, winner, pack)
    deliver(client, completed)
    opened = stripe_fake.dispute(payment_intent)
    deliver(client, opened)
    assert balance_of(winner) == 0
    won = stripe_fake.close_dispute(opened["data"]["object"]["id"], won=True)
    deliver(client, won)
    deliver(client, won)
    assert balance_of(winner) == 5_000
    restore = LedgerEntry.objects.get(idempotency_key=f"restore:{won['data']['object']['id']}")
    assert (restore.kind, restore.amount, restore.reference) == (
        "adjustment",
        5_000,
        f"dispute:{won['data']['object']['id']}",
    )


def test_dispute_events_in_any_order_end_in_the_same_ledger(stripe_fake, pack):
    in_order, reversed_order = UserFactory(), UserFactory()
    client = Client()
    events = {}
    for user in (in_order, reversed_order):
        completed, payment_intent = paid_pack(stripe_fake, user, pack)
        opened = stripe_fake.dispute(payment_intent)
        closed = stripe_fake.close_dispute(opened["data"]["object"]["id"], won=True)
        events[user.pk] = [completed, opened, closed]
    for event in events[in_order.pk]:
        deliver(client, event)
    for event in reversed(events[reversed_order.pk]):
        deliver(client, event)

    def shape(user):
        return sorted((key.split(":")[0], kind, amount) for key, kind, amount in ledger(user))

    assert (
        shape(in_order)
        == shape(reversed_order)
        == [
            ("clawback", "clawback", -5_000),
            ("purchase", "purchase", 5_000),
            ("restore", "adjustment", 5_000),
        ]
    )
    assert balance_of(in_order) == balance_of(reversed_order) == 5_000


def test_a_refunded_plan_invoice_claws_back_that_months_credits(client, stripe_fake, plan, buyer):
    completed = stripe_fake.complete_checkout(start_checkout(buyer, plan))
    invoice_id = completed["data"]["object"]["invoice"]
    payment_intent = stripe_fake.get(invoice_id)["payments"]["data"][0]["payment"]["payment_intent"]
    refunded, refund = stripe_fake.refund(payment_intent, amount=600)  # half of $12.00
    deliver(client, refunded)  # before any invoice event: found through the invoice's payment
    assert ledger(buyer) == sorted(
        [(f"invoice:{invoice_id}", "subscription_grant", 15_000), (f"clawback:{refund['id']}", "clawback", -7_500)]
    )
    deliver(client, stripe_fake.events_of_type("invoice.paid")[-1])
    assert balance_of(buyer) == 7_500


def test_a_charge_that_bought_no_credits_is_left_alone(client, stripe_fake, buyer):
    stripe_fake.add_price("price_t_other", 900, "usd")
    other = stripe_fake.client().v1.checkout.sessions.create(
        params={"mode": "payment", "line_items": [{"price": "price_t_other", "quantity": 1}]}
    )
    payment_intent = stripe_fake.complete_checkout(other.id)["data"]["object"]["payment_intent"]
    refunded, _ = stripe_fake.refund(payment_intent)
    # Another product on the same Stripe account (no user of ours): acknowledged, nothing written.
    for event in (stripe_fake.events_of_type("checkout.session.completed")[-1], refunded):
        assert deliver(client, event).status_code == 200
        assert StripeEvent.objects.get(event_id=event["id"]).status == "processed"
    assert not LedgerEntry.objects.exists()


def test_a_failure_halfway_through_a_reverse_order_refund_leaves_nothing_half_done(client, stripe_fake, pack, buyer):
    completed, payment_intent = paid_pack(stripe_fake, buyer, pack)
    refunded, refund = stripe_fake.refund(payment_intent)
    # The purchase is read, then listing the refunds fails.
    stripe_fake.fail_requests("GET", "/v1/refunds", status=503)
    assert deliver(client, refunded).status_code == 500
    assert not LedgerEntry.objects.exists()  # no grant without its clawback
    assert StripeEvent.objects.get(event_id=refunded["id"]).status == "failed"

    assert deliver(client, refunded).status_code == 200  # Stripe's retry
    deliver(client, completed)
    deliver(client, relabel(refunded, "charge.refund.updated") | {"data": {"object": refund}})
    assert ledger(buyer) == sorted(
        [
            (f"purchase:{completed['data']['object']['id']}", "purchase", 5_000),
            (f"clawback:{refund['id']}", "clawback", -5_000),
        ]
    )
    assert balance_of(buyer) == 0
