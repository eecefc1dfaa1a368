from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet, Subquery

from accounts.models import User
from billing.models import CreditAccount, LedgerEntry
from core.keyset import Key

# The history's order, newest first: served by the (account, -created_at, -id) index.
HISTORY_KEYS = (Key("created_at", datetime), Key("id", int))


def ledger_history(*, user: User) -> QuerySet[LedgerEntry]:
    # Filtered by the account id, not through `account__user`: behind that join the planner
    # cannot tell which account it is and walks far more of the ledger's index.
    # The id comes from a scalar subquery (an InitPlan, run first), so no extra round trip.
    account_id = Subquery(CreditAccount.objects.filter(user=user).values("pk")[:1])
    return LedgerEntry.objects.filter(account_id=account_id).order_by("-created_at", "-id")
