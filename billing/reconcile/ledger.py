"""The ledger's own rules: every cached balance is the sum of its entries, every
balance-after the running sum, every refund gives back one charge for its amount, nothing is
refunded twice; and which balances are below zero (after a clawback)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, F, OuterRef, Q, Subquery, Sum, Value, Window
from django.db.models.functions import Coalesce

from billing.models import CreditAccount, LedgerEntry
from billing.reconcile.findings import EXAMPLES, Check, Finding, rows_finding


def _touched_accounts(since: datetime) -> list[int]:
    # Accounts with an entry since then, or whose cached balance moved (an UPDATE outside the
    # services does not stamp updated_at: the full pass is the net for that). Two indexed
    # reads, as a list: the planner then knows how few accounts it is.
    moved = CreditAccount.objects.filter(updated_at__gte=since).values_list("pk", flat=True)
    written = LedgerEntry.objects.filter(created_at__gte=since).values_list("account_id", flat=True).distinct()
    return sorted({*moved, *written})


def balance_mismatch(*, since: datetime | None = None) -> Finding:
    if since is None:
        # Every account: one GROUP BY over all entries joined to their accounts.
        total = Coalesce(Sum("entries__amount"), Value(0))
        accounts = CreditAccount.objects.all()
    else:
        # The accounts touched since then: each one's sum through the account's index.
        entries = LedgerEntry.objects.filter(account=OuterRef("pk")).order_by().values("account")
        total = Coalesce(Subquery(entries.annotate(total=Sum("amount")).values("total")), Value(0))
        accounts = CreditAccount.objects.filter(pk__in=_touched_accounts(since))
    accounts = (
        accounts.annotate(entries_total=total, email=F("user__email"))
        .exclude(balance=F("entries_total"))
        .order_by("pk")
    )
    return rows_finding(
        "balance_mismatch",
        "Accounts whose cached balance is not the sum of their ledger entries",
        accounts,
        ["pk", "email", "balance", "entries_total"],
    )


def entry_chain_broken(*, since: datetime | None = None) -> Finding:
    # Each entry's balance_after must be the running sum of the account's entries up to it, in
    # id order: ids are drawn while the account row is locked, so they follow the writes (a
    # clock need not). One window function: linear in the number of entries read. An
    # incremental run reads only the accounts with new entries (the sum needs their whole
    # history; entries never change, so older accounts' chains stay as the last pass saw them).
    entries = LedgerEntry.objects.all()
    if since is not None:
        written = LedgerEntry.objects.filter(created_at__gte=since).values_list("account_id", flat=True).distinct()
        entries = entries.filter(account_id__in=sorted(written))
    entries = (
        entries.annotate(running_total=Window(Sum("amount"), partition_by=[F("account_id")], order_by=F("id").asc()))
        .filter(~Q(balance_after=F("running_total")))
        .order_by("pk")
    )
    return rows_finding(
        "entry_chain_broken",
        "Entries whose balance-after is not the running sum of the account's entries",
        entries,
        ["pk", "idempotency_key", "amount", "balance_after", "running_total"],
    )


def _refunds(since: datetime | None):
    refunds = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REFUND)
    return refunds if since is None else refunds.filter(created_at__gte=since)


def refund_without_charge(*, since: datetime | None = None) -> Finding:
    refunds = _refunds(since).exclude(refund_of__kind=LedgerEntry.Kind.CHARGE)
    return rows_finding(
        "refund_without_charge",
        "Refunds that do not give back a charge",
        refunds.order_by("pk"),
        ["pk", "idempotency_key", "amount"],
    )


def refund_amount_mismatch(*, since: datetime | None = None) -> Finding:
    refunds = _refunds(since).filter(refund_of__kind=LedgerEntry.Kind.CHARGE).exclude(amount=-F("refund_of__amount"))
    return rows_finding(
        "refund_amount_mismatch",
        "Refunds for another amount than their charge",
        refunds.order_by("pk"),
        ["pk", "idempotency_key", "amount", "refund_of__amount"],
    )


def charge_refunded_twice(*, since: datetime | None = None) -> Finding:
    # The one-to-one link stops a second refund entry for one charge. A thing may be charged in
    # parts (a job of several results: one charge each, each refunded on its own), so this
    # counts per reference: more refunds than charges means something was refunded twice under
    # different charges' references.
    entries = LedgerEntry.objects.filter(kind__in=[LedgerEntry.Kind.CHARGE, LedgerEntry.Kind.REFUND])
    if since is not None:
        entries = entries.filter(reference__in=_refunds(since).values("reference"))
    is_refund = Q(kind=LedgerEntry.Kind.REFUND)
    duplicated = (
        entries.exclude(reference="")
        .values("account", "reference")
        .annotate(refunds=Count("pk", filter=is_refund), charges=Count("pk", filter=~is_refund))
        .filter(refunds__gt=F("charges"))
        .order_by("reference")
    )
    count = duplicated.count()
    examples = list(duplicated.values("reference", "refunds", "charges")[:EXAMPLES]) if count else []
    return Finding(
        name="charge_refunded_twice",
        description="Things refunded more times than they were charged",
        count=count,
        examples=examples,
    )


def negative_balance(*, since: datetime | None = None) -> Finding:
    accounts = CreditAccount.objects.filter(balance__lt=0).annotate(email=F("user__email")).order_by("balance")
    return rows_finding(
        "negative_balance",
        "Accounts below zero (after a clawback); they cannot start jobs",
        accounts,
        ["pk", "email", "balance"],
    )


CHECKS: list[Check] = [
    balance_mismatch,
    entry_chain_broken,
    refund_without_charge,
    refund_amount_mismatch,
    charge_refunded_twice,
    negative_balance,
]
