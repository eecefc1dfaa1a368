from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestFilesMixin, staticfiles_storage
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_q.brokers import get_broker

from billing.models import CreditPack, Plan
from billing.money import format_money
from billing.pricing import SIGNUP_CREDITS
from core.storages import storage_is_s3
from generation.selectors import catalog_credit_costs, showcase_items

logger = logging.getLogger(__name__)


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


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_cache() -> None:
    cache.set("readyz", "ok", 10)
    if cache.get("readyz") != "ok":
        raise RuntimeError("cache did not return what was written")


def _check_broker() -> None:
    get_broker().queue_size()


def _check_storage() -> None:
    if storage_is_s3(default_storage):
        # A missing object is not an error for S3, a missing bucket or bad credentials are.
        default_storage.connection.meta.client.head_bucket(Bucket=default_storage.bucket_name)
    else:
        default_storage.exists("readyz")


def _check_static_manifest() -> None:
    # Pages name their CSS, scripts and icons through the manifest collectstatic writes at build
    # time; a process that started without it answers 500 on every page (only DEBUG needs none).
    if (
        isinstance(staticfiles_storage, ManifestFilesMixin)
        and not settings.DEBUG
        and not staticfiles_storage.hashed_files
    ):
        raise RuntimeError("no static files manifest: run collectstatic when building, then restart")


READINESS_CHECKS: dict[str, Callable[[], None]] = {
    "database": _check_database,
    "static": _check_static_manifest,
    "cache": _check_cache,
    "queue": _check_broker,
    "storage": _check_storage,
}


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    results: dict[str, dict] = {}
    for name, check in READINESS_CHECKS.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:  # any failure means "not ready"; the kind of error is enough here
            logger.warning("readyz: %s is unavailable: %r", name, exc)
            results[name] = {"ok": False, "error": type(exc).__name__}
        else:
            results[name] = {"ok": True}
        results[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    failing = [name for name, result in results.items() if not result["ok"]]
    body = {"status": "unavailable" if failing else "ok", "failing": failing, "checks": results}
    return JsonResponse(body, status=503 if failing else 200)


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
