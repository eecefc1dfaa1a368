"""Stripe's side of reconciliation: every paid Checkout session and invoice has its grant and
every grant its payment, refunds and disputes are clawed back (and restored when won), one plan
per person, nothing billed to a deleted account, and no webhook event left unprocessed.

These checks ask Stripe, not our tables: each reads Stripe's listings of the last
STRIPE_RECONCILE_WINDOW_HOURS, whatever `since` says (the event check reads our own table).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta

import stripe
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.db.models import Count, Q
from django.utils import timezone

from accounts.models import User
from billing import stripe_services
from billing.models import LedgerEntry, StripeCustomer, StripeEvent, Subscription
from billing.reconcile.findings import EXAMPLES, Check, Finding, rows_finding
from billing.stripe_client import payments_configured, stripe_client
from billing.stripe_services.common import stripe_id
from core.skips import item_guard

_STRIPE_ERRORS_NOTE = "Stripe could not be reached"


def _stripe_window_start() -> int:
    return int(time.time()) - settings.STRIPE_RECONCILE_WINDOW_HOURS * 3600


# Stripe's listings of the window, read once per run: several checks compare against the same
# paid sessions and invoices. Kept only while run_checks runs; a check run on its own (the admin's
# fix of one finding, the check after a --fix) reads Stripe afresh.
_listings: ContextVar[dict[str, list[dict]] | None] = ContextVar("stripe_listings", default=None)


@contextmanager
def stripe_listings_kept() -> Iterator[None]:
    """Inside the block, each of Stripe's listings is read once and shared by the checks."""
    token = _listings.set({})
    try:
        yield
    finally:
        _listings.reset(token)


def _listed(name: str, read: Callable[[], list[dict]]) -> list[dict]:
    kept = _listings.get()
    if kept is None:
        return read()
    if name not in kept:
        kept[name] = read()
    return kept[name]


def _paid_checkout_sessions(client, since: int) -> list[dict]:
    return _listed("checkout_sessions", lambda: _read_paid_checkout_sessions(client, since))


def _paid_plan_invoices(client, since: int) -> list[dict]:
    return _listed("plan_invoices", lambda: _read_paid_plan_invoices(client, since))


def _read_paid_checkout_sessions(client, since: int) -> list[dict]:
    # Credit packs only: a plan's credits come with its invoices, checked below.
    sessions = client.v1.checkout.sessions.list(params={"created": {"gte": since}, "status": "complete", "limit": 100})
    found = []
    for session in sessions.auto_paging_iter():
        data = session.to_dict()
        if (
            data.get("mode") == "payment"
            and data.get("payment_status") in stripe_services.PAID_SESSION
            and "user_id" in (data.get("metadata") or {})  # one of ours, not a payment link's
        ):
            found.append(data)
    return found


def _read_paid_plan_invoices(client, since: int) -> list[dict]:
    invoices = client.v1.invoices.list(params={"created": {"gte": since}, "status": "paid", "limit": 100})
    ours = set(StripeCustomer.objects.values_list("customer_id", flat=True))
    found = []
    for invoice in invoices.auto_paging_iter():
        data = invoice.to_dict()
        details = (data.get("parent") or {}).get("subscription_details") or {}
        if (
            details.get("subscription")
            and data.get("billing_reason") in stripe_services.GRANTING_BILLING_REASONS
            and (data.get("customer") in ours or "user_id" in (details.get("metadata") or {}))
        ):
            found.append(data)
    return found


def _repair(fulfil: Callable[..., object], **kwargs: str) -> bool:
    repaired = False
    with item_guard(loop="reconcile", item=f"{fulfil.__name__} {' '.join(kwargs.values())}"):
        repaired = fulfil(**kwargs) is not None
    return repaired


def _stripe_finding(name: str, description: str, find: Callable[[object, int], Finding]) -> Finding:
    if not payments_configured():
        return Finding(name=name, description=f"{description} (skipped: payments are not configured)")
    try:
        return find(stripe_client(), _stripe_window_start())
    except stripe.StripeError as error:
        return Finding(name=name, description=f"{description}: {_STRIPE_ERRORS_NOTE}", count=1,
                       examples=[{"error": str(error)}])  # fmt: skip


def _granted(keys: list[str]) -> set[str]:
    return set(LedgerEntry.objects.filter(idempotency_key__in=keys).values_list("idempotency_key", flat=True))


def stripe_paid_checkout_without_grant(*, since: datetime | None = None) -> Finding:
    # Always its own window of STRIPE_RECONCILE_WINDOW_HOURS: Stripe is asked, not our tables.
    name = "stripe_paid_checkout_without_grant"
    description = "Paid Stripe Checkout sessions (credit packs) without their credits"

    def find(client, since: int) -> Finding:
        sessions = _paid_checkout_sessions(client, since)
        granted = _granted([f"purchase:{s['id']}" for s in sessions])
        missing = [s for s in sessions if f"purchase:{s['id']}" not in granted]

        def fix() -> int:
            # The webhook's own service: a second run, or a webhook arriving meanwhile, grants nothing more.
            return sum(_repair(stripe_services.checkout_fulfill, session_id=s["id"]) for s in missing)

        examples = [
            {"session": s["id"], "customer": s.get("customer"), "amount_total": s.get("amount_total"),
             "user_id": s["metadata"].get("user_id"), "credits": s["metadata"].get("credits")}
            for s in missing[:EXAMPLES]
        ]  # fmt: skip
        return Finding(name=name, description=description, count=len(missing), examples=examples, fix=fix)

    return _stripe_finding(name, description, find)


def stripe_paid_invoice_without_grant(*, since: datetime | None = None) -> Finding:
    # Always its own window of STRIPE_RECONCILE_WINDOW_HOURS: Stripe is asked, not our tables.
    name = "stripe_paid_invoice_without_grant"
    description = "Paid Stripe invoices for a monthly plan without their credits"

    def find(client, since: int) -> Finding:
        # A deleted account's invoices are meant to grant nothing: stripe_deleted_account_billed lists them.
        deleted = _deleted_customers()
        invoices = [i for i in _paid_plan_invoices(client, since) if i.get("customer") not in deleted]
        granted = _granted([f"invoice:{i['id']}" for i in invoices])
        missing = [i for i in invoices if f"invoice:{i['id']}" not in granted]

        def fix() -> int:
            return sum(_repair(stripe_services.invoice_fulfill, invoice_id=i["id"]) for i in missing)

        examples = [
            {"invoice": i["id"], "customer": i.get("customer"), "amount_paid": i.get("amount_paid"),
             "billing_reason": i.get("billing_reason")}
            for i in missing[:EXAMPLES]
        ]  # fmt: skip
        return Finding(name=name, description=description, count=len(missing), examples=examples, fix=fix)

    return _stripe_finding(name, description, find)


def _reversal_state(kind: str, obj: dict) -> str:
    status = str(obj.get("status") or "")
    if kind == "dispute" and status in stripe_services.DISPUTE_RESTORE_STATUSES:
        return "won (funds reinstated)"
    return status


def _reversal_keys(kind: str, obj: dict) -> list[str]:
    # The entries a reversal in this state must have (see stripe_services.common for why).
    status = obj.get("status")
    clawback = (
        stripe_services.REFUND_CLAWBACK_STATUSES if kind == "refund" else stripe_services.DISPUTE_CLAWBACK_STATUSES
    )
    keys = [f"clawback:{obj['id']}"] if status in clawback else []
    if kind == "dispute" and status in stripe_services.DISPUTE_RESTORE_STATUSES:
        keys.append(f"restore:{obj['id']}")
    return keys


def stripe_reversal_not_settled(*, since: datetime | None = None) -> Finding:
    # Always its own window of STRIPE_RECONCILE_WINDOW_HOURS: Stripe is asked, not our tables.
    name = "stripe_reversal_not_settled"
    description = "Stripe refunds and disputes of the window without their clawback (or, when won, their restore)"

    def find(client, since: int) -> Finding:
        reversals = [
            ("refund", r.to_dict())
            for r in client.v1.refunds.list(params={"created": {"gte": since}, "limit": 100}).auto_paging_iter()
        ] + [
            ("dispute", d.to_dict())
            for d in client.v1.disputes.list(params={"created": {"gte": since}, "limit": 100}).auto_paging_iter()
        ]
        summary: dict[str, int] = {}
        for kind, obj in reversals:
            label = f"{kind} {_reversal_state(kind, obj)}"
            summary[label] = summary.get(label, 0) + 1
        written = _granted([key for kind, obj in reversals for key in _reversal_keys(kind, obj)])
        unsettled_charges: dict[str, list[tuple[str, dict]]] = {}
        for kind, obj in reversals:
            if any(key not in written for key in _reversal_keys(kind, obj)) and obj.get("charge"):
                unsettled_charges.setdefault(str(obj["charge"]), []).append((kind, obj))
        # Ask the webhook's own service what it would write (rolled back): a payment that was not
        # for credits, a renewal of a deleted account, or a share too small for a credit, needs nothing.
        examples, due = [], []
        for charge_id, items in unsettled_charges.items():
            entries = stripe_services.charge_reversals_settle(charge_id=charge_id, dry_run=True)
            if not entries:
                continue
            due.append(charge_id)
            missing = {entry.idempotency_key: entry.amount for entry in entries}
            for kind, obj in items:
                examples.append({
                    kind: obj["id"], "state": _reversal_state(kind, obj), "charge": charge_id,
                    "amount": obj.get("amount"), "currency": obj.get("currency"),
                    "missing": {key: missing[key] for key in _reversal_keys(kind, obj) if key in missing},
                })  # fmt: skip

        def fix() -> int:
            # The webhook's service, for real: each entry is keyed, so a second run writes nothing.
            return sum(_repair(stripe_services.charge_reversals_settle, charge_id=charge_id) for charge_id in due)

        return Finding(name=name, description=description, count=len(due), examples=examples[:EXAMPLES],
                       fix=fix, summary=summary)  # fmt: skip

    return _stripe_finding(name, description, find)


def stripe_plan_duplicated(*, since: datetime | None = None) -> Finding:
    # Always its own window of STRIPE_RECONCILE_WINDOW_HOURS: Stripe is asked, not our tables.
    name = "stripe_plan_duplicated"
    description = "People billed for more than one monthly plan at Stripe (one plan per person)"

    def find(client, since: int) -> Finding:
        # Who may have two (only they are listed in full, so the cost follows the window's new
        # plans): a customer who started two plans in the window at Stripe, one who started a
        # plan there while our copies show another, and one our copies already show with two.
        started: dict[str, set[str]] = {}
        for sub in client.v1.subscriptions.list(params={"created": {"gte": since}, "limit": 100}).auto_paging_iter():
            started.setdefault(stripe_id(sub.to_dict().get("customer")), set()).add(sub.id)
        current = Subscription.objects.filter(status__in=Subscription.BILLING)
        others = set(
            current.filter(user__stripe_customer__customer_id__in=list(started)).values_list(
                "user__stripe_customer__customer_id", "subscription_id"
            )
        )
        candidates = {c for c, ids in started.items() if len(ids) > 1}
        candidates |= {customer for customer, sub_id in others if sub_id not in started[customer]}
        candidates |= set(
            current.values("user")
            .annotate(plans=Count("pk"))
            .filter(plans__gt=1)
            .values_list("user__stripe_customer__customer_id", flat=True)
        )
        customers = dict(
            StripeCustomer.objects.filter(customer_id__in=candidates - {"", None}).values_list("customer_id", "user_id")
        )
        found = []
        for customer_id, user_id in sorted(customers.items()):
            for duplicate in stripe_services.plan_duplicates_find(customer_id=customer_id):
                found.append({"subscription": duplicate["id"], "customer": customer_id, "user_id": user_id,
                              "status": duplicate.get("status")})  # fmt: skip

        def fix() -> int:
            # Cancel the later plans and refund what they were paid (the webhook's own service).
            users = User.objects.filter(pk__in={f["user_id"] for f in found})
            return sum(len(stripe_services.plan_duplicates_settle(user=user)) for user in users)

        return Finding(name=name, description=description, count=len(found), examples=found[:EXAMPLES], fix=fix)

    return _stripe_finding(name, description, find)


def _deleted_customers() -> set[str]:
    return set(StripeCustomer.objects.filter(user__deleted_at__isnull=False).values_list("customer_id", flat=True))


def stripe_deleted_account_billed(*, since: datetime | None = None) -> Finding:
    # Always its own window of STRIPE_RECONCILE_WINDOW_HOURS: Stripe is asked, not our tables.
    name = "stripe_deleted_account_billed"
    description = "Deleted accounts with a plan still running, or a renewal paid after the deletion and not refunded"

    def find(client, since: int) -> Finding:
        running = list(
            Subscription.objects.filter(user__deleted_at__isnull=False, status__in=Subscription.CURRENT)
            .order_by("pk")
            .values_list("subscription_id", "user_id")
        )
        deleted = _deleted_customers()
        # Paid by a deleted account and granted nothing: paid after the deletion (what was paid
        # before has its grant, and the person had it).
        billed = [i for i in _paid_plan_invoices(client, since) if i.get("customer") in deleted]
        granted = _granted([f"invoice:{i['id']}" for i in billed])
        renewals = [
            i
            for i in billed
            if f"invoice:{i['id']}" not in granted and not stripe_services.invoice_refunded(invoice_id=i["id"])
        ]

        def fix() -> int:
            # Cancel what still runs, and give back what was taken after the person left: the
            # renewal granted nothing (nobody can use the credits).
            repaired = 0
            for subscription_id, _ in running:
                repaired += _repair(stripe_services.subscription_cancel, subscription_id=subscription_id,
                                    comment="Account deleted")  # fmt: skip
            for invoice in renewals:
                repaired += _repair(stripe_services.invoice_payment_refund, invoice_id=invoice["id"],
                                    reason="Renewal after the account was deleted")  # fmt: skip
            return repaired

        examples = [{"subscription": sub, "user_id": user_id, "state": "still running"} for sub, user_id in running]
        examples += [
            {"invoice": i["id"], "customer": i.get("customer"), "amount_paid": i.get("amount_paid"),
             "state": "paid after deletion, not refunded"}
            for i in renewals
        ]  # fmt: skip
        count = len(running) + len(renewals)
        return Finding(name=name, description=description, count=count, examples=examples[:EXAMPLES], fix=fix)

    return _stripe_finding(name, description, find)


def stripe_grant_without_payment(*, since: datetime | None = None) -> Finding:
    # Always its own window of STRIPE_RECONCILE_WINDOW_HOURS: Stripe is asked, not our tables.
    name = "stripe_grant_without_payment"
    description = "Purchase and plan grants whose Stripe session or invoice is not paid"

    def find(client, since: int) -> Finding:
        grants = list(
            LedgerEntry.objects.filter(
                Q(kind=LedgerEntry.Kind.PURCHASE, reference__startswith="checkout:")
                | Q(kind=LedgerEntry.Kind.SUBSCRIPTION_GRANT, reference__startswith="invoice:"),
                created_at__gte=datetime.fromtimestamp(since, tz=UTC),
            )
            .select_related("account__user")
            .order_by("pk")
        )
        if not grants:
            return Finding(name=name, description=description)
        # One listing covers most grants; anything older than the window is looked up by id.
        paid = {s["id"] for s in _paid_checkout_sessions(client, since)} | {
            i["id"] for i in _paid_plan_invoices(client, since)
        }
        unpaid = []
        for grant in grants:
            kind, _, object_id = grant.reference.partition(":")
            if object_id in paid or _paid_by_id(client, kind, object_id):
                continue
            unpaid.append(grant)
        examples = [
            {"key": g.idempotency_key, "amount": g.amount, "email": g.account.user.email} for g in unpaid[:EXAMPLES]
        ]
        # No fix: taking credits back is a person's decision (a staff grant through the wrong path?).
        return Finding(name=name, description=description, count=len(unpaid), examples=examples)

    return _stripe_finding(name, description, find)


def _paid_by_id(client, kind: str, object_id: str) -> bool:
    try:
        if kind == "checkout":
            return client.v1.checkout.sessions.retrieve(object_id)["payment_status"] in stripe_services.PAID_SESSION
        return client.v1.invoices.retrieve(object_id)["status"] == "paid"
    except stripe.InvalidRequestError:  # no such object: certainly not paid
        return False


# A queued event older than this has lost its task (a worker died, the queue was down).
STRIPE_EVENT_STUCK_MINUTES = 15


def stripe_event_unprocessed(*, since: datetime | None = None) -> Finding:
    # A state (failed, or received long ago and never done), read through the status index.
    stuck_before = timezone.now() - timedelta(minutes=STRIPE_EVENT_STUCK_MINUTES)
    events = StripeEvent.objects.filter(
        Q(status=StripeEvent.Status.FAILED) | Q(status=StripeEvent.Status.RECEIVED, received_at__lt=stuck_before)
    ).order_by("received_at", "pk")
    finding = rows_finding(
        "stripe_event_unprocessed",
        f"Stripe webhook events that failed, or were not processed within {STRIPE_EVENT_STUCK_MINUTES} minutes",
        events,
        ["event_id", "type", "status", "attempts", "error"],
    )

    def fix() -> int:
        # The task's own service; a done event is skipped, so a run racing a worker does nothing twice.
        repaired = 0
        for event in events.exclude(status__in=StripeEvent.DONE)[:500]:
            try:
                stripe_services.stripe_event_process(event=event)
            except (OperationalError, InterfaceError):
                raise
            except Exception:  # noqa: S112 (recorded and logged once by stripe_event_process)
                continue  # a poison payload stays failed for a person; the next event goes on
            repaired += 1
        return repaired

    finding.fix = fix if payments_configured() else None
    return finding


CHECKS: list[Check] = [
    stripe_paid_checkout_without_grant,
    stripe_paid_invoice_without_grant,
    stripe_reversal_not_settled,
    stripe_plan_duplicated,
    stripe_deleted_account_billed,
    stripe_grant_without_payment,
    stripe_event_unprocessed,
]
