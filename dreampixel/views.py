from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from billing.models import CreditPack, Plan
from billing.money import format_money
from billing.pricing import SIGNUP_CREDITS
from core.metrics import process_metrics, scrape_allowed
from generation.selectors import catalog_credit_costs, showcase_items
from operations.health import DEPENDENCIES, SERVING, CheckResult, checks_run
from operations.metrics import site_metrics


@require_GET
def landing(request: HttpRequest) -> HttpResponse:
    costs = catalog_credit_costs()
    context = {
        # The catalog's prices, as jobs are charged; packs and plans with their money price.
        "credit_costs": costs,
        "signup_credits": SIGNUP_CREDITS,
        "packs": CreditPack.objects.filter(active=True),
        "plans": Plan.objects.filter(active=True),
        "prices": _prices_in_money(costs),
        "showcase": showcase_items(),
    }
    return render(request, "landing.html", context)


def _prices_in_money(costs: dict[str, int]) -> dict:
    """Credits next to money: what each costs at the rate of the first credit pack on offer."""
    pack = CreditPack.objects.filter(active=True).order_by("order", "price_cents", "pk").first()
    if pack is None or not pack.credits:
        return {"pack": None}
    money = {
        kind: format_money(round(credits * pack.price_cents / pack.credits), pack.currency)
        for kind, credits in costs.items()
    }
    return {"pack": pack, **money}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    # The process is alive and answering; says nothing about what it depends on (see readyz).
    return JsonResponse({"status": "ok"})


def _report(results: list[CheckResult]) -> JsonResponse:
    failing = [result.name for result in results if not result.ok]
    body = {
        "status": "unavailable" if failing else "ok",
        "failing": failing,
        "checks": {result.name: result.as_dict() for result in results},
    }
    return JsonResponse(body, status=503 if failing else 200)


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    # For the load balancer: only what this node needs to serve pages (operations/health.py).
    return _report(checks_run(SERVING))


@never_cache
@require_GET
def readyz_deep(request: HttpRequest) -> HttpResponse:
    # For monitoring: every part, Redis and the bucket included. Not public, like /metrics.
    allowed = scrape_allowed(request)
    if not allowed:
        return _not_for_you(allowed)
    return _report(checks_run({**SERVING, **DEPENDENCIES}))


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    allowed = scrape_allowed(request)
    if not allowed:
        return _not_for_you(allowed)
    return HttpResponse(process_metrics() + site_metrics(), content_type=CONTENT_TYPE_LATEST)


def _not_for_you(allowed: bool | None) -> HttpResponse:
    if allowed is None:
        raise Http404("metrics are off: set METRICS_TOKEN or METRICS_ALLOWED_NETWORKS")
    response = HttpResponse("Forbidden: a bearer token or an allowed network is needed.\n", status=403)
    response["Content-Type"] = "text/plain"
    return response


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    # Browsers ask for /favicon.ico on pages that name none (the admin's). Resolved per
    # request: hashed static names exist only after collectstatic.
    return HttpResponsePermanentRedirect(static("img/favicon.svg"))


def when_google_is_on(view: Callable) -> Callable:
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not settings.GOOGLE_LOGIN_ENABLED:
            raise Http404("Google sign-in is not configured")
        return view(request, *args, **kwargs)

    return wrapped


def ratelimited(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # django-ratelimit's middleware sends limited requests here; its windows are at most a minute.
    return _too_many(request, retry_after=60)


def allauth_ratelimited(request: HttpRequest) -> HttpResponse:
    # allauth's limits (handler429 in dreampixel/urls.py): some windows last up to an hour.
    return _too_many(request, retry_after=None)


def _too_many(request: HttpRequest, *, retry_after: int | None) -> HttpResponse:
    template = "partials/429.html" if getattr(request, "htmx", False) else "429.html"
    response = render(request, template, {"retry_after": retry_after}, status=429)
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response
