"""Reconciliation: checks that money and work agree, run by `manage.py reconcile`.

Each check is a function returning a Finding. Apps that know both sides of a rule (a failed
job without its refund, a paid Stripe session without its grant) register their own checks
here with @reconcile_check; `billing` knows only the ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import F, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from billing.models import CreditAccount, LedgerEntry

EXAMPLES = 5


@dataclass
class Finding:
    name: str
    description: str
    count: int = 0
    examples: list[dict] = field(default_factory=list)
    # Repairs what was found, idempotently (the same code `reconcile --fix` and the admin use);
    # returns how many things it repaired. None when only a person can decide.
    fix: Callable[[], int] | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.count == 0


Check = Callable[[], Finding]
CHECKS: dict[str, Check] = {}


def reconcile_check(func: Check) -> Check:
    CHECKS[func.__name__] = func
    return func


def run_checks() -> list[Finding]:
    _load_app_checks()
    return [check() for check in CHECKS.values()]


def _load_app_checks() -> None:
    # Apps that know both sides of a rule keep their checks in <app>/reconcile.py.
    from django.apps import apps
    from django.utils.module_loading import autodiscover_modules

    if apps.ready:
        autodiscover_modules("reconcile")


def _finding(name: str, description: str, queryset, fields: list[str]) -> Finding:
    count = queryset.count()
    examples = list(queryset.values(*fields)[:EXAMPLES]) if count else []
    return Finding(name=name, description=description, count=count, examples=examples)


@reconcile_check
def balance_mismatch() -> Finding:
    entries_total = (
        LedgerEntry.objects.filter(account=OuterRef("pk"))
        .order_by()
        .values("account")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    accounts = (
        CreditAccount.objects.annotate(entries_total=Coalesce(Subquery(entries_total), Value(0)))
        .exclude(balance=F("entries_total"))
        .annotate(email=F("user__email"))
        .order_by("pk")
    )
    return _finding(
        "balance_mismatch",
        "Accounts whose cached balance is not the sum of their ledger entries",
        accounts,
        ["pk", "email", "balance", "entries_total"],
    )


@reconcile_check
def entry_chain_broken() -> Finding:
    # Each entry's balance_after must be the running sum of the account's entries up to it.
    running = (
        LedgerEntry.objects.filter(account=OuterRef("account"))
        .filter(Q(created_at__lt=OuterRef("created_at")) | Q(created_at=OuterRef("created_at"), pk__lte=OuterRef("pk")))
        .order_by()
        .values("account")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    entries = (
        LedgerEntry.objects.annotate(running_total=Subquery(running))
        .exclude(balance_after=F("running_total"))
        .order_by("pk")
    )
    return _finding(
        "entry_chain_broken",
        "Entries whose balance-after is not the running sum of the account's entries",
        entries,
        ["pk", "idempotency_key", "amount", "balance_after", "running_total"],
    )


@reconcile_check
def refund_without_charge() -> Finding:
    refunds = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REFUND).exclude(refund_of__kind=LedgerEntry.Kind.CHARGE)
    return _finding(
        "refund_without_charge",
        "Refunds that do not give back a charge",
        refunds.order_by("pk"),
        ["pk", "idempotency_key", "amount"],
    )


@reconcile_check
def refund_amount_mismatch() -> Finding:
    refunds = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REFUND, refund_of__kind=LedgerEntry.Kind.CHARGE).exclude(
        amount=-F("refund_of__amount")
    )
    return _finding(
        "refund_amount_mismatch",
        "Refunds for another amount than their charge",
        refunds.order_by("pk"),
        ["pk", "idempotency_key", "amount", "refund_of__amount"],
    )


@reconcile_check
def charge_refunded_twice() -> Finding:
    # The one-to-one link stops a second refund entry for one charge; this also catches two
    # refunds written for the same thing under different charges' references.
    duplicated = (
        LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REFUND)
        .exclude(reference="")
        .values("account", "reference")
        .annotate(refunds=Sum(Value(1)))
        .filter(refunds__gt=1)
        .order_by("reference")
    )
    count = duplicated.count()
    examples = list(duplicated.values("reference", "refunds")[:EXAMPLES]) if count else []
    return Finding(
        name="charge_refunded_twice",
        description="Things refunded more than once",
        count=count,
        examples=examples,
    )


@reconcile_check
def negative_balance() -> Finding:
    accounts = CreditAccount.objects.filter(balance__lt=0).annotate(email=F("user__email")).order_by("balance")
    return _finding(
        "negative_balance",
        "Accounts below zero (after a clawback); they cannot start jobs",
        accounts,
        ["pk", "email", "balance"],
    )
