"""Every status of Stripe's dispute object has a meaning for the credits the charge bought."""

from __future__ import annotations

import contextlib
import json
import typing

import pytest
import stripe
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.models import StripeEvent
from billing.services import balance_of
from billing.stripe_services import DISPUTE_STATUS_EFFECTS
from billing.tests.stripe_kit import deliver, ledger, start_checkout

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sync_queue")]

# What the buyer of a 5,000-credit pack holds once a dispute in this state is settled.
BALANCE_AFTER = {"none": 5_000, "clawback": 0, "restore": 5_000}


def stripes_dispute_statuses() -> set[str]:
    # The statuses the pinned library's Dispute type lists (Literal[...] inside Union[..., str]).
    (literal, _) = typing.get_args(stripe.Dispute.__annotations__["status"])
    return set(typing.get_args(literal))


def bought(client, stripe_fake, user, pack) -> str:
    completed = stripe_fake.complete_checkout(start_checkout(user, pack))
    assert deliver(client, completed).status_code == 200
    return completed["data"]["object"]["payment_intent"]


def test_every_status_of_stripes_dispute_object_is_mapped():
    statuses = stripes_dispute_statuses()
    assert {"appeal_needs_response", "appeal_under_review", "prevented", "warning_closed"} <= statuses
    assert set(DISPUTE_STATUS_EFFECTS) == statuses


@pytest.mark.parametrize("status", sorted(DISPUTE_STATUS_EFFECTS))
def test_a_dispute_first_seen_in_any_status_settles_the_credits_by_that_status(
    client, stripe_fake, pack, buyer, status
):
    payment_intent = bought(client, stripe_fake, buyer, pack)
    opened = stripe_fake.dispute(payment_intent, status=status)
    assert deliver(client, opened).status_code == 200
    assert deliver(client, opened).status_code == 200  # and again: once is once
    assert balance_of(buyer) == BALANCE_AFTER[DISPUTE_STATUS_EFFECTS[status]]


@pytest.mark.parametrize("status", ["appeal_needs_response", "appeal_under_review"])
def test_reconcile_claws_back_a_dispute_under_appeal_whose_webhooks_were_lost(
    capsys, client, stripe_fake, pack, buyer, status
):
    payment_intent = bought(client, stripe_fake, buyer, pack)
    dispute = stripe_fake.dispute(payment_intent, status=status)["data"]["object"]
    capsys.readouterr()
    with contextlib.suppress(CommandError):
        call_command("reconcile", "--json", "--fix")
    report = json.loads(capsys.readouterr().out)
    assert report["fixed"].get("stripe_reversal_not_settled") == 1
    assert (f"clawback:{dispute['id']}", "clawback", -5_000) in ledger(buyer)
    assert balance_of(buyer) == 0


def test_a_dispute_status_stripe_adds_later_fails_its_event_for_a_person(client, stripe_fake, pack, buyer):
    payment_intent = bought(client, stripe_fake, buyer, pack)
    opened = stripe_fake.dispute(payment_intent, status="escalated_to_arbitration")
    deliver(client, opened)
    event = StripeEvent.objects.get(event_id=opened["id"])
    assert event.status == StripeEvent.Status.FAILED
    assert "escalated_to_arbitration" in event.error
    assert balance_of(buyer) == 5_000
