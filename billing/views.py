from __future__ import annotations

import logging
import time
import uuid

import stripe
from csp.decorators import csp_update
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from django_q.tasks import async_task

from accounts.requests import AuthenticatedHttpRequest
from billing.models import CheckoutSession, CreditPack, Plan, StripeCustomer, StripeEvent, Subscription
from billing.pricing import credit_costs
from billing.selectors import HISTORY_KEYS, ledger_history
from billing.stripe_client import payments_configured
from billing.stripe_services import (
    CheckoutRefused,
    checkout_fulfill,
    checkout_start,
    portal_session_create,
    stripe_event_record,
)
from core.jsonbodies import json_body_parse, short_text
from core.keyset import keyset_page
from core.links import absolute_url
from core.metrics import webhook_refused
from core.references import references_gone

logger = logging.getLogger(__name__)

HISTORY_PAGE_SIZE = 25
PAYMENTS_UNAVAILABLE = "Payments are unavailable right now. Nothing was charged; please try again in a few minutes."


class SeeOther(HttpResponseRedirect):
    # After a POST, 303 tells the browser to GET the next page (Stripe's or ours).
    status_code = 303


# The portal button's POST is answered with a redirect to billing.stripe.com, which the
# page's form-action must allow too (checkout.stripe.com is allowed site-wide).
PORTAL_FORM_ACTION = {"form-action": ["https://billing.stripe.com"]}


@csp_update(PORTAL_FORM_ACTION)
@csp_update(PORTAL_FORM_ACTION, REPORT_ONLY=True)  # type: ignore[arg-type]  # django-csp types views as taking only a plain HttpRequest
@login_required
@require_GET
def billing_home(request: AuthenticatedHttpRequest) -> HttpResponse:
    page = keyset_page(
        ledger_history(user=request.user), keys=HISTORY_KEYS, size=HISTORY_PAGE_SIZE,
        before=request.GET.get("before"), after=request.GET.get("after"),
    )  # fmt: skip
    # Entries of a deleted job say so instead of linking to a page that is gone.
    gone = references_gone(entry.reference for entry in page.object_list)
    for entry in page.object_list:
        entry.gone_label = gone.get(entry.reference, "")
    subscriptions = Subscription.objects.select_related("plan").filter(user=request.user)
    # The plan that runs now, else the latest one (to say it was canceled).
    subscription = subscriptions.filter(status__in=Subscription.CURRENT).first() or subscriptions.first()
    return render(
        request,
        "billing/home.html",
        {
            "page": page,
            # From the catalog, as jobs are charged (see billing.pricing).
            "credit_costs": credit_costs(),
            "payments_configured": payments_configured(),
            "payments_sandbox": settings.PAYMENTS_SANDBOX,
            "payments_sandbox_url": settings.PAYMENTS_SANDBOX_URL,
            "packs": CreditPack.objects.filter(active=True),
            "plans": Plan.objects.filter(active=True),
            "subscription": subscription,
            "has_plan": subscription is not None and subscription.is_current,
            "has_customer": StripeCustomer.objects.filter(user=request.user).exists(),
            # One per page view: a double-click on a buy button reuses the same Checkout session.
            "attempt": uuid.uuid4().hex,
        },
    )


def _buy(request: AuthenticatedHttpRequest, product: CreditPack | Plan) -> HttpResponse:
    home = reverse("billing")
    if not payments_configured():
        messages.warning(request, "Payments are not configured on this site.")
        return SeeOther(home)
    attempt = request.POST.get("attempt", "")
    try:
        attempt = uuid.UUID(attempt).hex
    except ValueError:
        attempt = uuid.uuid4().hex
    try:
        url = checkout_start(
            user=request.user,
            product=product,
            success_url=absolute_url(reverse("checkout_success"), request=request)
            + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=absolute_url(reverse("checkout_cancel"), request=request),
            attempt=attempt,
        )
    except CheckoutRefused as refused:
        messages.warning(request, str(refused))
        return SeeOther(home)
    except stripe.StripeError:
        logger.exception("Stripe Checkout could not start for user %s (%s)", request.user.pk, product)
        messages.error(request, PAYMENTS_UNAVAILABLE)
        return SeeOther(home)
    return SeeOther(url)


@login_required
@require_POST
def buy_pack(request: AuthenticatedHttpRequest, pack_id: int) -> HttpResponse:
    return _buy(request, get_object_or_404(CreditPack, pk=pack_id, active=True))


@login_required
@require_POST
def buy_plan(request: AuthenticatedHttpRequest, plan_id: int) -> HttpResponse:
    return _buy(request, get_object_or_404(Plan, pk=plan_id, active=True))


@login_required
@require_POST
def billing_portal(request: AuthenticatedHttpRequest) -> HttpResponse:
    home = reverse("billing")
    if not payments_configured():
        messages.warning(request, "Payments are not configured on this site.")
        return SeeOther(home)
    try:
        url = portal_session_create(user=request.user, return_url=absolute_url(home, request=request))
    except stripe.StripeError:
        logger.exception("Stripe portal could not open for user %s", request.user.pk)
        messages.error(request, "The billing portal is unavailable right now. Please try again in a few minutes.")
        return SeeOther(home)
    if url is None:
        messages.info(request, "There is nothing to manage yet: your plan and invoices appear after a purchase.")
        return SeeOther(home)
    return SeeOther(url)


@login_required
@require_GET
def checkout_success(request: AuthenticatedHttpRequest) -> HttpResponse:
    # Only the buyer's own session: another user's id is a 404, as is a made-up one.
    checkout = (
        CheckoutSession.objects.select_related("pack", "plan")
        .filter(user=request.user, session_id=request.GET.get("session_id", ""))
        .first()
    )
    if checkout is None:
        raise Http404("No such purchase")
    grant = checkout.grant
    if grant is None and not request.htmx and payments_configured():
        # Arriving here means Checkout finished: fulfil now rather than wait for the webhook,
        # through the same idempotent path. If Stripe is slow, the page polls for the webhook.
        try:
            checkout_fulfill(session_id=checkout.session_id)
        except Exception:
            logger.exception("Fulfilment from the success page failed for %s", checkout.session_id)
        checkout.refresh_from_db()
        grant = checkout.grant
    context = {
        "checkout": checkout,
        "grant": grant,
        "final": grant is not None or checkout.payment_state in ("failed", "expired"),
    }
    template = "billing/checkout_success.html#status" if request.htmx else "billing/checkout_success.html"
    return render(request, template, context)


@login_required
@require_GET
def checkout_cancel(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(request, "billing/checkout_cancel.html")


def _signed_at(header: str) -> int:
    # The first t= of a header verify_header has accepted (it reads the same one).
    return int(next(value for key, _, value in (item.partition("=") for item in header.split(",")) if key == "t"))


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        # Stripe keeps retrying for days, so nothing is lost while the secret is being set.
        return JsonResponse({"error": "Stripe webhooks are not configured"}, status=503)
    try:
        body = request.body.decode("utf-8")
        # The library's own check: HMAC of "<timestamp>.<body>", within its 300 s tolerance.
        # Only the signature: construct_event would also build an Event, and raises
        # AttributeError on a signed body that is JSON but not an object.
        header = request.headers.get("Stripe-Signature", "")
        stripe.WebhookSignature.verify_header(body, header, secret, stripe.Webhook.DEFAULT_TOLERANCE)
        # The library refuses only old timestamps; one far ahead would stay valid for as long.
        if _signed_at(header) > time.time() + stripe.Webhook.DEFAULT_TOLERANCE:
            raise ValueError("signed in the future")
        # Stored whole (JSONB): no NUL, no lone surrogate, no deep nesting; id and type fit their columns.
        payload = json_body_parse(body)
        if not isinstance(payload, dict):
            raise ValueError("not an event")
        short_text(payload.get("id"), max_length=255)
        short_text(payload.get("type"), max_length=100)
        if not isinstance((payload.get("data") or {}).get("object"), dict):
            raise ValueError("an event without its object")
    except (ValueError, stripe.SignatureVerificationError) as error:
        logger.warning("Rejected a Stripe webhook: %s", error)
        webhook_refused("stripe")
        return JsonResponse({"error": "invalid webhook"}, status=400)

    event, process = stripe_event_record(payload=payload)
    if not process:
        return JsonResponse({"received": True, "status": event.status})
    # The work (one to five Stripe reads, each with retries) runs in a task, so Stripe gets its
    # answer at once; the task retries on its own. The row is recorded first: a lost task is found
    # by `reconcile` (stripe_event_unprocessed).
    try:
        async_task("billing.tasks.stripe_event_run", event.pk, task_name=f"stripe-event-{event.event_id}"[:100])
    except Exception:
        # The queue is down (or, with the queue run inline, the work failed): 500 makes Stripe
        # deliver the event again later, and the recorded row is queued again then.
        logger.exception("Stripe event %s could not be queued or failed", event.event_id)
        return JsonResponse({"error": "not processed yet; it will be retried"}, status=500)
    event.refresh_from_db(fields=["status"])
    return JsonResponse({"received": True, "status": event.status if event.status in StripeEvent.DONE else "queued"})
