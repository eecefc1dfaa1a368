"""The webhook verifies, records and answers at once; a django-q2 task does the work, with retries."""

from __future__ import annotations

import pytest
from django_q.models import Schedule

from billing.models import StripeEvent
from billing.services import balance_of
from billing.tasks import STRIPE_EVENT_RETRY_DELAYS, stripe_event_run
from billing.tests.stripe_kit import deliver, ledger, queued_stripe_events, start_checkout

# The real ORM queue (no sync_queue): the test plays the worker.
pytestmark = pytest.mark.django_db


def test_the_webhook_answers_before_asking_stripe_anything_and_the_task_grants(client, stripe_fake, pack, buyer):
    event = stripe_fake.complete_checkout(start_checkout(buyer, pack))
    requests_before = len(stripe_fake.requests)

    response = deliver(client, event)

    assert response.status_code == 200
    assert response.json() == {"received": True, "status": "queued"}
    assert len(stripe_fake.requests) == requests_before  # no Stripe call inside the request
    assert StripeEvent.objects.get(event_id=event["id"]).status == "received"
    assert balance_of(buyer) == 0

    [event_pk] = queued_stripe_events()
    assert stripe_event_run(event_pk) == "processed"
    assert balance_of(buyer) == pack.credits
    # At-least-once delivery: the same task again, and Stripe's own redelivery, change nothing.
    assert stripe_event_run(event_pk) == "done already"
    assert deliver(client, event).json() == {"received": True, "status": "processed"}
    assert queued_stripe_events() == []
    assert ledger(buyer) == [(f"purchase:{event['data']['object']['id']}", "purchase", pack.credits)]


def test_a_failing_task_schedules_its_retry_and_the_retry_grants_once(client, stripe_fake, pack, buyer):
    event = stripe_fake.complete_checkout(start_checkout(buyer, pack))
    assert deliver(client, event).status_code == 200
    [event_pk] = queued_stripe_events()

    stripe_fake.fail_requests("GET", r"/v1/checkout/sessions/cs_test_\w+", status=500)
    with pytest.raises(Exception, match="FakeStripe"):
        stripe_event_run(event_pk)
    row = StripeEvent.objects.get(pk=event_pk)
    assert row.status == "failed" and row.attempts == 1
    retry = Schedule.objects.get(func="billing.tasks.stripe_event_run")
    assert (retry.schedule_type, retry.args, retry.repeats) == (Schedule.ONCE, repr((event_pk,)), -1)
    delay = (retry.next_run - row.last_attempt_at).total_seconds()
    assert STRIPE_EVENT_RETRY_DELAYS[0] - 2 < delay < STRIPE_EVENT_RETRY_DELAYS[0] + 2
    assert balance_of(buyer) == 0

    assert stripe_event_run(event_pk) == "processed"
    assert stripe_event_run(event_pk) == "done already"
    assert balance_of(buyer) == pack.credits
    assert StripeEvent.objects.get(pk=event_pk).attempts == 2


def test_reconcile_finds_an_event_whose_task_was_lost_and_fix_processes_it(client, stripe_fake, pack, buyer):
    from datetime import timedelta

    from django.core.management import call_command
    from django.core.management.base import CommandError
    from django.utils import timezone

    event = stripe_fake.complete_checkout(start_checkout(buyer, pack))
    assert deliver(client, event).status_code == 200
    queued_stripe_events()  # the worker died with it
    StripeEvent.objects.filter(event_id=event["id"]).update(received_at=timezone.now() - timedelta(hours=1))

    with pytest.raises(CommandError):
        call_command("reconcile", "--json")
    call_command("reconcile", "--fix", "--json")
    assert balance_of(buyer) == pack.credits
    assert StripeEvent.objects.get(event_id=event["id"]).status == "processed"
    call_command("reconcile")  # all clear now
