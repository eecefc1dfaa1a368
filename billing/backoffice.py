"""Billing's part of the admin home (operations/dashboard.py shows it).

Every figure is one query over an indexed time range, except the outstanding credits, which
must add up every account's balance (one narrow row per person)."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.urls import reverse

from billing.models import CheckoutSession, CreditAccount, LedgerEntry, ReconcileRun, StripeEvent
from billing.money import format_money
from core.references import reference_admin_url

Kind = LedgerEntry.Kind


def billing_figures(*, since) -> dict:
    # Revenue as paid through Checkout (packs and first plan invoices); plan renewals are
    # counted, not summed, since their amount lives at Stripe.
    paid = (
        CheckoutSession.objects.filter(payment_state=CheckoutSession.PaymentState.PAID, updated_at__gte=since)
        .values("currency")
        .annotate(total=Sum("amount_cents"), count=Count("pk"))
        .order_by("currency")
    )
    money = LedgerEntry.objects.filter(
        kind__in=[Kind.SUBSCRIPTION_GRANT, Kind.ADJUSTMENT], created_at__gte=since
    ).aggregate(
        plan_invoices=Count("pk", filter=Q(kind=Kind.SUBSCRIPTION_GRANT)),
        # Credits staff gave (grants and corrections upwards), not what they took back.
        staff_granted=Sum("amount", filter=Q(kind=Kind.ADJUSTMENT, actor_type=LedgerEntry.Actor.STAFF, amount__gt=0)),
        staff_grants=Count("pk", filter=Q(kind=Kind.ADJUSTMENT, actor_type=LedgerEntry.Actor.STAFF, amount__gt=0)),
    )
    return {
        "revenue": ", ".join(format_money(row["total"], row["currency"]) for row in paid) or None,
        "checkouts_paid": sum(row["count"] for row in paid),
        "plan_invoices": money["plan_invoices"],
        "staff_granted": money["staff_granted"] or 0,
        "staff_grants": money["staff_grants"],
    }


def outstanding_credits() -> dict:
    """The liability: credits people hold and may still spend, and what they paid for them on
    average (money over credits of every paid Checkout session), per currency."""
    held = CreditAccount.objects.aggregate(
        credits=Sum("balance", filter=Q(balance__gt=0)), holders=Count("pk", filter=Q(balance__gt=0))
    )
    credits = held["credits"] or 0
    paid = (
        CheckoutSession.objects.filter(payment_state=CheckoutSession.PaymentState.PAID)
        .values("currency")
        .annotate(cents=Sum("amount_cents"), credits=Sum("credits"))
        .order_by("-cents")
    )
    values = [
        {
            "currency": row["currency"],
            "per_thousand": format_money(round(row["cents"] * 1000 / row["credits"]), row["currency"]),
            "value": format_money(round(credits * row["cents"] / row["credits"]), row["currency"]),
        }
        for row in paid
        if row["credits"]
    ]
    return {"credits": credits, "holders": held["holders"], "values": values}


def revenue_by_day(*, since, tz) -> tuple[str | None, dict]:
    """Checkout money per day in the currency with the most of it: (currency, {day: cents})."""
    rows = (
        CheckoutSession.objects.filter(payment_state=CheckoutSession.PaymentState.PAID, updated_at__gte=since)
        .annotate(day=TruncDate("updated_at", tzinfo=tz))
        .values("day", "currency")
        .annotate(cents=Sum("amount_cents"))
        .order_by()
    )
    by_currency: dict[str, dict] = {}
    for row in rows:
        by_currency.setdefault(row["currency"], {})[row["day"]] = row["cents"]
    if not by_currency:
        return None, {}
    currency = max(by_currency, key=lambda c: sum(by_currency[c].values()))
    return currency, by_currency[currency]


# What a person does about a finding that no code may fix; fixable ones are fixed from the list.
NEXT_STEPS = {
    "balance_mismatch": "A balance moved without its entry: a bug. Tell engineering; do not correct it by hand.",
    "entry_chain_broken": "An entry's balance-after is wrong: a bug. Tell engineering; do not correct it by hand.",
    "refund_without_charge": "Open the entry; if the credits were not owed, take them back with an adjustment "
    "naming the entry.",
    "refund_amount_mismatch": "Open the entry and correct the difference with an adjustment naming it.",
    "charge_refunded_twice": "Take the second refund back with an adjustment naming both entries.",
    "negative_balance": "The person owes credits after a Stripe refund or lost dispute: they start no jobs until "
    "they buy more. Forgive the debt with an adjustment only if Finance agrees.",
    "succeeded_jobs_with_refund": "Open the job: if its result was good, take the refund back with an adjustment.",
    "jobs_without_charge": "A job ran without being paid for each of its results: a bug. Tell engineering with the "
    "job ids.",
    "charges_without_job": "Credits were taken for no job: refund them with an adjustment naming the charge.",
    "stripe_grant_without_payment": "Look the object up at Stripe: if it was never paid, take the credits back with "
    "an adjustment naming it.",
}
FIXABLE_STEP = "Fix it from the findings list (the same code as `reconcile --fix`; safe to repeat)."
DEFAULT_STEP = "Needs a person: open the examples, decide, and write what you did in an adjustment's memo."


def _stripe_url(object_id: str) -> str | None:
    # The Stripe dashboard's page for an object, in test or live mode as the key says.
    paths = {"in_": "invoices", "cus_": "customers", "sub_": "subscriptions", "ch_": "payments", "py_": "payments",
             "pi_": "payments", "re_": "refunds", "du_": "disputes", "dp_": "disputes"}  # fmt: skip
    for prefix, path in paths.items():
        if object_id.startswith(prefix):
            mode = "test/" if settings.STRIPE_SECRET_KEY.startswith(("sk_test", "rk_test")) else ""
            return f"https://dashboard.stripe.com/{mode}{path}/{object_id}"
    return None


def finding_links(example: dict) -> list[tuple[str, str]]:
    """Where an example of a finding can be looked at: its user, job, entry or Stripe object."""
    links = []
    for field, value in example.items():
        if value in (None, ""):
            continue
        value = str(value)
        if field in ("user_id", "user") and value.isdigit():
            links.append((f"user {value}", reverse("admin:accounts_user_change", args=[value])))
        # A field named like a kind of reference (`job`) or holding one (`reference`: `job:<uuid>`)
        # links to the admin page its app registered; billing does not know those apps.
        elif url := reference_admin_url(f"{field}:{value}"):
            links.append((f"{field} {value[:8]}", url))
        elif field == "reference" and (url := reference_admin_url(value)):
            links.append((value, url))
        elif field == "email" and "pk" in example:  # a credit account's checks
            links.append((value, reverse("admin:billing_creditaccount_change", args=[example["pk"]])))
        elif field in ("key", "idempotency_key"):
            links.append((value, reverse("admin:billing_ledgerentry_changelist") + f"?q={value}"))
        elif field == "session" or value.startswith("cs_"):
            links.append((value, reverse("admin:billing_checkoutsession_changelist") + f"?q={value}"))
        elif url := _stripe_url(value):
            links.append((value, url))
    return links


def billing_panels() -> dict:
    run = ReconcileRun.objects.filter(finished_at__isnull=False).first()
    # Open findings only: one fixed from the admin (fixed_at set) is done with.
    findings = list(run.findings.filter(fixed_at__isnull=True)) if run else []
    return {
        "failing_events": list(StripeEvent.objects.filter(status=StripeEvent.Status.FAILED)[:10]),
        "reconcile_run": run,
        "open_findings": [
            {
                "finding": finding,
                "next_step": FIXABLE_STEP if finding.fixable else NEXT_STEPS.get(finding.name, DEFAULT_STEP),
                "examples": [finding_links(example) for example in finding.examples if isinstance(example, dict)],
            }
            for finding in findings
        ],
    }
