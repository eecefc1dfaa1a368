from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from billing.pricing import CREDIT_COSTS, LOW_BALANCE
from billing.selectors import ledger_history

HISTORY_PAGE_SIZE = 25


@login_required
@require_GET
def billing_home(request: HttpRequest) -> HttpResponse:
    page = Paginator(ledger_history(user=request.user), HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "billing/home.html",
        {"page": page, "credit_costs": CREDIT_COSTS, "low_balance": LOW_BALANCE},
    )
