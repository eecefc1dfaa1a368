"""django-q2 tasks of billing (the hourly reconcile is scheduled by operations/schedules.py)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone
from django_q.models import Schedule

from billing.models import StripeEvent
from billing.reconcile.runner import reconcile_run
from billing.stripe_services import stripe_event_process

logger = logging.getLogger(__name__)

# After a failed attempt, the next one waits this long (seconds); after the last, the event stays
# failed for a person (the admin's "Process again") and `reconcile` lists it.
STRIPE_EVENT_RETRY_DELAYS = (30, 120, 600, 3_600, 6 * 3_600)


def reconcile_scheduled() -> dict:
    # Hourly: check and store; repairs are an operator's or staff's decision (--fix, the admin).
    run, _, _ = reconcile_run(fix=False, trigger="schedule")
    return {"run": run.pk, "ok": run.ok}


def stripe_event_run(event_id: int) -> str:
    """Process one recorded webhook event (enqueued by the webhook, which has already answered).

    Delivery is at least once and Stripe may send the event again: every handler is idempotent,
    and an event already processed is left alone. A failure schedules the next attempt.
    """
    event = StripeEvent.objects.filter(pk=event_id).first()
    if event is None or event.status in StripeEvent.DONE:
        return "done already"
    try:
        stripe_event_process(event=event)
    except Exception:
        _stripe_event_retry_schedule(event_id=event_id)
        raise
    return "processed"


def _stripe_event_retry_schedule(*, event_id: int) -> None:
    event = StripeEvent.objects.filter(pk=event_id).values("status", "attempts").first()
    if event is None or event["status"] != StripeEvent.Status.FAILED:
        return
    attempts = event["attempts"]
    if attempts > len(STRIPE_EVENT_RETRY_DELAYS):
        logger.error("Stripe event %s failed %s times; left for staff", event_id, attempts)
        return
    # Named per attempt: two workers failing the same attempt schedule one retry.
    name = f"stripe-event:{event_id}:{attempts}"
    Schedule.objects.get_or_create(
        name=name,
        defaults={
            "func": "billing.tasks.stripe_event_run",
            "args": repr((event_id,)),
            "schedule_type": Schedule.ONCE,
            "repeats": -1,  # django-q deletes a ONCE schedule after its run only when negative
            "next_run": timezone.now() + timedelta(seconds=STRIPE_EVENT_RETRY_DELAYS[attempts - 1]),
        },
    )
