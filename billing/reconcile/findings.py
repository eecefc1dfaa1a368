"""What a reconcile check returns, and where the checks are registered."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import QuerySet

from core.registry import Registry

# Rows shown with a finding; the count says how many there are in all.
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
    # What the check looked at, for the record even when all is well (e.g. Stripe's refunds by state).
    summary: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.count == 0


# A check takes `since`: None for a full pass, else a time from which it looks only at what
# changed (entries written, accounts moved, jobs created or finished). Checks of a state
# (negative balances, jobs past their deadline) read an index and ignore it.
Check = Callable[..., Finding]

# By the check's name; apps register theirs in AppConfig.ready, in the order they run.
RECONCILE_CHECKS: Registry[Check] = Registry("reconcile checks")


def checks_register(checks: list[Check]) -> None:
    for check in checks:
        RECONCILE_CHECKS.register(check.__name__, check)


def rows_finding(name: str, description: str, queryset: QuerySet, fields: list[str]) -> Finding:
    """A finding of the rows a queryset matches: their count and the first few, as dicts."""
    count = queryset.count()
    examples = list(queryset.values(*fields)[:EXAMPLES]) if count else []
    return Finding(name=name, description=description, count=count, examples=examples)
