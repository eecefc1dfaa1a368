"""`reconcile` reads the refunds and disputes of its window at Stripe and settles what the ledger lacks."""

from __future__ import annotations

import contextlib
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.services import balance_of
from billing.tests.stripe_kit import deliver, ledger, start_checkout

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sync_queue")]

CHECK = "stripe_reversal_not_settled"


def reconcile(capsys, *args: str) -> dict:
    capsys.readouterr()
    with contextlib.suppress(CommandError):  # exits 1 while something is found
        call_command("reconcile", "--json", *args)
    return json.loads(capsys.readouterr().out)


def bought(client, stripe_fake, user, pack) -> str:
    """A paid pack whose purchase webhook arrived; returns its payment intent."""
    completed = stripe_fake.complete_checkout(start_checkout(user, pack))
    assert deliver(client, completed).status_code == 200
    return completed["data"]["object"]["payment_intent"]


def test_refunds_and_disputes_whose_webhooks_never_arrived_are_found_and_settled_once(
    capsys, client, stripe_fake, pack, buyer
):
    refunded, lost, won = (bought(client, stripe_fake, buyer, pack) for _ in range(3))
    assert balance_of(buyer) == 15_000
    # Stripe gives money back three ways; none of the webhooks reaches us.
    _, refund = stripe_fake.refund(refunded)
    lost_dispute = stripe_fake.dispute(lost)["data"]["object"]
    stripe_fake.close_dispute(lost_dispute["id"], won=False)
    won_dispute = stripe_fake.dispute(won)["data"]["object"]
    stripe_fake.close_dispute(won_dispute["id"], won=True)
    # A refunded session still reads payment_status=paid: the older checks see nothing wrong.
    report = reconcile(capsys)
    assert report["findings"]["stripe_paid_checkout_without_grant"]["count"] == 0

    finding = report["findings"][CHECK]
    assert finding["count"] == 3 and finding["fixable"]
    assert finding["summary"] == {"refund succeeded": 1, "dispute lost": 1, "dispute won (funds reinstated)": 1}
    states = {e.get("refund") or e.get("dispute"): (e["state"], e["missing"]) for e in finding["examples"]}
    assert states == {
        refund["id"]: ("succeeded", {f"clawback:{refund['id']}": -5_000}),
        lost_dispute["id"]: ("lost", {f"clawback:{lost_dispute['id']}": -5_000}),
        won_dispute["id"]: (
            "won (funds reinstated)",
            {f"clawback:{won_dispute['id']}": -5_000, f"restore:{won_dispute['id']}": 5_000},
        ),
    }
    assert balance_of(buyer) == 15_000  # looking changed nothing

    report = reconcile(capsys, "--fix")
    assert report["ok"] and report["fixed"] == {CHECK: 3}
    assert balance_of(buyer) == 5_000
    reversal_entries = [entry for entry in ledger(buyer) if not entry[0].startswith("purchase:")]
    assert reversal_entries == sorted([
        (f"clawback:{refund['id']}", "clawback", -5_000),
        (f"clawback:{lost_dispute['id']}", "clawback", -5_000),
        (f"clawback:{won_dispute['id']}", "clawback", -5_000),
        (f"restore:{won_dispute['id']}", "adjustment", 5_000),
    ])  # fmt: skip

    # Once: a second repair and the late webhooks write nothing more.
    report = reconcile(capsys, "--fix")
    assert report["ok"] and report["fixed"] == {}
    for event_type in ("charge.refunded", "charge.dispute.closed"):
        for event in stripe_fake.events_of_type(event_type):
            assert deliver(client, event).status_code == 200
    assert balance_of(buyer) == 5_000
    assert len(ledger(buyer)) == 3 + 4


def test_reversals_already_settled_by_their_webhooks_are_listed_and_all_clear(capsys, client, stripe_fake, pack, buyer):
    payment_intent = bought(client, stripe_fake, buyer, pack)
    refunded, _ = stripe_fake.refund(payment_intent, amount=250)
    deliver(client, refunded)
    report = reconcile(capsys)
    finding = report["findings"][CHECK]
    assert finding["count"] == 0 and finding["summary"] == {"refund succeeded": 1}
    assert balance_of(buyer) == 2_500
