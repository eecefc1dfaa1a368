from __future__ import annotations

from functools import cached_property

from django.http import HttpRequest

from billing.models import Subscription
from billing.pricing import low_balance
from billing.services import balance_of


class CreditsSummary:
    # Lazy: pages that never show the balance never query it; pages that do, query once.
    def __init__(self, user):
        self._user = user

    @cached_property
    def balance(self) -> int:
        return balance_of(self._user)

    @cached_property
    def current_plan(self):
        # The plan that runs now (the delete-account page says what becomes of it), or None.
        return (
            Subscription.objects.select_related("plan")
            .filter(user=self._user, status__in=Subscription.CURRENT)
            .order_by("created_at")
            .first()
        )

    @cached_property
    def low_balance(self) -> int:
        return low_balance()

    @property
    def low(self) -> bool:
        return self.balance < self.low_balance


def credits(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"credits": CreditsSummary(user)}
