"""The live contract: the product against real Stripe (test mode) and real Replicate.

Run with `make contract` (CONTRACT_STRIPE_SECRET_KEY=sk_test_..., CONTRACT_REPLICATE_API_TOKEN=r8_...)
before upgrading `stripe` or `replicate` (docs/runbook.md). Each part skips, saying why, without
its key. What it does:

- Stripe: buys a pack through the product's Checkout session, paid on Stripe's hosted page with a
  test card in headless Chromium; runs a plan through its first invoice and one renewal on a
  Stripe test clock; refunds the pack. Webhooks cannot reach this machine, so the events Stripe
  recorded (`GET /v1/events`) are posted to the product's webhook exactly as Stripe sent them,
  signed with the library's scheme under a local secret. The balances must come out exact.
- Replicate: runs one cheap prediction (FLUX schnell, about $0.003) through the product's worker
  and provider, checks its JSON against Replicate's published Prediction type, then posts it to the
  product's webhook signed with the account's own webhook secret (fetched from the API), as
  Replicate's completed webhook carries it; the job must end succeeded with its image stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import time
import uuid
from pathlib import Path

import httpx
import pytest
import stripe
from django.test import Client

from accounts.tests.factories import UserFactory
from billing.models import CreditPack, Plan, StripeCustomer
from billing.services import balance_of, credits_grant
from billing.stripe_client import stripe_client
from billing.stripe_services import checkout_start
from generation.models import Job
from generation.providers import get_provider
from generation.services import job_create, job_run
from generation.tests.factories import replicate_model

pytestmark = pytest.mark.django_db(transaction=True)

LOCAL_WEBHOOK_SECRET = "whsec_contract_run_local"
SUCCESS_URL = "http://127.0.0.1:9/billing/checkout/success/?session_id={CHECKOUT_SESSION_ID}"
CANCEL_URL = "http://127.0.0.1:9/billing/checkout/cancel/"
CONTRACT = json.loads(
    (Path(__file__).resolve().parents[2] / "fakes/contracts/replicate_published_examples.json").read_text()
)


# ---- Stripe --------------------------------------------------------------------------------------


@pytest.fixture
def live_stripe(settings, stripe_test_key):
    settings.STRIPE_SECRET_KEY = stripe_test_key
    settings.STRIPE_WEBHOOK_SECRET = LOCAL_WEBHOOK_SECRET
    settings.STRIPE_API_BASE = ""
    return stripe_client()


def price_for(client, lookup_key: str, cents: int, *, recurring: bool) -> str:
    """The contract's own test-mode price, made once and found again by its lookup key."""
    found = client.v1.prices.list(params={"lookup_keys": [lookup_key], "limit": 1}).data
    if found:
        return found[0].id
    params: dict = {"currency": "usd", "unit_amount": cents, "lookup_key": lookup_key,
                    "product_data": {"name": f"Dream Pixel contract: {lookup_key}"}}  # fmt: skip
    if recurring:
        params["recurring"] = {"interval": "month"}
    return client.v1.prices.create(params=params).id


def pay_on_stripes_page(url: str) -> None:
    """Stripe's hosted Checkout, paid with the test card 4242 in headless Chromium."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox"])
        page = browser.new_page()
        page.goto(url)
        if page.locator("#email").count():
            page.fill("#email", "contract@dreampixel.example")
        page.fill("#cardNumber", "4242 4242 4242 4242")
        page.fill("#cardExpiry", "12 / 34")
        page.fill("#cardCvc", "123")
        page.fill("#billingName", "Contract Run")
        if page.locator("#billingPostalCode").count():
            page.fill("#billingPostalCode", "10001")
        page.click(".SubmitButton")
        page.wait_for_url("http://127.0.0.1:9/**", wait_until="commit", timeout=60_000)
        browser.close()


def replay_events(client, since: int, types: list[str]) -> int:
    """Post what Stripe recorded since then to the product's webhook, oldest first."""
    events = client.v1.events.list(params={"created": {"gte": since}, "types": types, "limit": 100}).data
    web = Client()
    for event in sorted(events, key=lambda e: e.created):
        body = json.dumps(event.to_dict(), indent=2)
        header = stripe.WebhookSignature.generate_signature_header(body, LOCAL_WEBHOOK_SECRET)
        response = web.post("/webhooks/stripe/", body, content_type="application/json",
                            headers={"stripe-signature": header})  # fmt: skip
        assert response.status_code == 200, (event.type, response.content)
    return len(events)


def wait_for_clock(client, clock_id: str) -> None:
    for _ in range(120):
        if client.v1.test_helpers.test_clocks.retrieve(clock_id).status == "ready":
            return
        time.sleep(2)
    pytest.fail(f"test clock {clock_id} did not settle in four minutes")


def test_a_pack_a_plan_through_a_renewal_and_a_refund_against_stripe_test_mode(live_stripe, sync_queue):
    client = live_stripe
    started = int(time.time()) - 5
    run = uuid.uuid4().hex[:8]
    pack = CreditPack.objects.create(name=f"Contract pack {run}", credits=5_000, price_cents=500,
                                     stripe_price_id=price_for(client, "dreampixel-contract-pack", 500, recurring=False))  # fmt: skip
    plan = Plan.objects.create(name=f"Contract plan {run}", credits=15_000, price_cents=1_200,
                               stripe_price_id=price_for(client, "dreampixel-contract-plan", 1_200, recurring=True))  # fmt: skip

    buyer = UserFactory()
    pay_on_stripes_page(checkout_start(user=buyer, product=pack, success_url=SUCCESS_URL, cancel_url=CANCEL_URL,
                                       attempt=uuid.uuid4().hex))  # fmt: skip
    replay_events(client, started, ["checkout.session.completed"])
    assert balance_of(buyer) == 5_000

    subscriber = UserFactory()
    clock = client.v1.test_helpers.test_clocks.create(params={"frozen_time": int(time.time()), "name": run})
    try:
        customer = client.v1.customers.create(params={"email": subscriber.email, "test_clock": clock.id,
                                                      "metadata": {"user_id": str(subscriber.pk)}})  # fmt: skip
        StripeCustomer.objects.create(user=subscriber, customer_id=customer.id)
        pay_on_stripes_page(checkout_start(user=subscriber, product=plan, success_url=SUCCESS_URL,
                                           cancel_url=CANCEL_URL, attempt=uuid.uuid4().hex))  # fmt: skip
        wait_for_clock(client, clock.id)
        plan_events = ["checkout.session.completed", "customer.subscription.created", "invoice.paid"]
        replay_events(client, started, plan_events)
        assert balance_of(subscriber) == 15_000
        renewal_from = int(time.time()) - 5
        client.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": clock.frozen_time + 32 * 86_400})
        wait_for_clock(client, clock.id)
        replay_events(client, renewal_from, ["invoice.paid", "customer.subscription.updated"])
        assert balance_of(subscriber) == 30_000

        refund_from = int(time.time()) - 5
        payment_intent = client.v1.checkout.sessions.list(params={"customer": StripeCustomer.objects.get(
            user=buyer).customer_id, "limit": 1}).data[0].payment_intent  # fmt: skip
        client.v1.refunds.create(params={"payment_intent": payment_intent})
        replay_events(client, refund_from, ["charge.refunded", "refund.created", "refund.updated"])
        assert balance_of(buyer) == 0
    finally:
        client.v1.test_helpers.test_clocks.delete(clock.id)  # its customer and plan go with it


# ---- Replicate -----------------------------------------------------------------------------------


def sign_like_replicate(body: bytes, secret: str) -> dict[str, str]:
    webhook_id, timestamp = f"msg_contract_{uuid.uuid4().hex}", str(int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {"webhook-id": webhook_id, "webhook-timestamp": timestamp,
            "webhook-signature": "v1," + base64.b64encode(digest).decode()}  # fmt: skip


def test_one_cheap_prediction_and_its_webhook_against_replicate(settings, replicate_token, client, sync_queue):
    settings.REPLICATE_API_TOKENS = [replicate_token]
    settings.REPLICATE_BASE_URL = ""
    settings.REPLICATE_WEBHOOK_SECRET = ""  # read from Replicate, as production does
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"  # asks for a webhook (it cannot reach here)
    user = UserFactory()
    credits_grant(user=user, amount=1_000, key=f"purchase:contract-{user.pk}")
    job = job_create(user=user, model=replicate_model(), prompt="A small red cube", aspect_ratio="square")
    job_run(job_id=job.id)
    job.refresh_from_db()
    assert job.prediction_id, job.error_message

    provider = get_provider("replicate")
    for _ in range(60):
        if provider.get(job.prediction_id).is_final:
            break
        time.sleep(2)
    raw = httpx.get(f"https://api.replicate.com/v1/predictions/{job.prediction_id}",
                    headers={"Authorization": f"Bearer {replicate_token}"}, timeout=30).json()  # fmt: skip
    fields = set(CONTRACT["prediction_fields"]["required"]) | set(CONTRACT["prediction_fields"]["optional"])
    assert set(CONTRACT["prediction_fields"]["required"]) <= set(raw)
    assert raw["status"] in CONTRACT["final_statuses"], raw["status"]
    unknown = set(raw) - fields
    print(f"Replicate fields beyond the published type (new, to read before relying on): {sorted(unknown)}")

    body = json.dumps(raw).encode()
    secret = provider.webhook_secret()
    answer = client.post(f"/webhooks/replicate/?job={job.pk}", body, content_type="application/json",
                         headers=sign_like_replicate(body, secret))  # fmt: skip
    assert answer.status_code == 200
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, (job.status, job.provider_error)
    assert job.outputs.count() == 1
