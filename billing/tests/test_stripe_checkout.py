from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts.tests.factories import UserFactory
from billing.models import CheckoutSession, CreditPack, LedgerEntry, StripeCustomer, StripeEvent
from billing.services import balance_of
from billing.stripe_services import stripe_customer_ensure
from billing.tests.stripe_kit import deliver, relabel, run_at_once, start_checkout

# Webhook work runs in a task: inline here, so each delivery has done its work when it returns.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sync_queue")]


def buy(client: Client, url: str) -> str:
    """Press a buy button; returns the Checkout session id Stripe redirected to."""
    response = client.post(url, {"attempt": "0f4b7e0e7c5a4a7e9c3b2a1d0e9f8a7b"})
    assert response.status_code == 303
    assert response["Location"].startswith("https://checkout.stripe.test/c/pay/cs_test_")
    return response["Location"].rsplit("/", 1)[-1]


@pytest.mark.django_db(transaction=True)
def test_a_pack_bought_end_to_end_is_credited_once_however_often_stripe_says_so(stripe_fake, pack, buyer):
    client = Client()
    client.force_login(buyer)
    session_id = buy(client, reverse("buy_pack", args=[pack.pk]))

    # Checkout charges the pack's price to the user's one Stripe customer.
    customer = StripeCustomer.objects.get(user=buyer)
    session = stripe_fake.get(session_id)
    assert session["mode"] == "payment"
    assert session["customer"] == customer.customer_id
    assert session["amount_total"] == 500 and session["currency"] == "usd"
    sent = stripe_fake.find_requests("POST", "/v1/checkout/sessions")[0]
    assert sent.params["line_items"] == [{"price": "price_test_starter", "quantity": "1"}]
    assert sent.params["success_url"].endswith("/billing/checkout/success/?session_id={CHECKOUT_SESSION_ID}")
    assert sent.idempotency_key.startswith(f"checkout:{buyer.pk}:")
    assert stripe_fake.find_requests("POST", "/v1/customers")[0].idempotency_key == f"customer:{buyer.pk}"
    assert balance_of(buyer) == 0

    completed = stripe_fake.complete_checkout(session_id)
    assert deliver(client, completed).status_code == 200
    assert balance_of(buyer) == 5_000

    # Stripe delivers the same event five more times at once, then a late async_payment_succeeded.
    responses = run_at_once(5, lambda i: deliver(Client(), completed))
    assert [r.status_code for r in responses] == [200] * 5
    assert deliver(client, relabel(completed, "checkout.session.async_payment_succeeded")).status_code == 200

    assert balance_of(buyer) == 5_000
    entry = LedgerEntry.objects.get(account__user=buyer)
    assert (entry.kind, entry.amount, entry.idempotency_key, entry.reference) == (
        "purchase",
        5_000,
        f"purchase:{session_id}",
        f"checkout:{session_id}",
    )
    assert StripeEvent.objects.get(event_id=completed["id"]).status == "processed"

    page = client.get(reverse("billing")).content.decode()
    assert "Starter pack" in page and "+5,000" in page


def test_a_double_click_on_buy_makes_one_checkout_session(client, stripe_fake, pack, buyer):
    client.force_login(buyer)
    first = buy(client, reverse("buy_pack", args=[pack.pk]))
    second = buy(client, reverse("buy_pack", args=[pack.pk]))  # the same form, posted twice
    assert first == second
    assert len(stripe_fake.objects("checkout.session")) == 1
    assert CheckoutSession.objects.filter(user=buyer).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_first_purchases_at_once_make_one_stripe_customer(stripe_fake):
    user = UserFactory()
    ids = run_at_once(4, lambda i: stripe_customer_ensure(user=user))
    assert len(set(ids)) == 1 and isinstance(ids[0], str)
    assert StripeCustomer.objects.get(user=user).customer_id == ids[0]
    assert [c["id"] for c in stripe_fake.objects("customer")] == [ids[0]]
    # Every racer that asked Stripe used the same idempotency key, so Stripe made one customer.
    asked = stripe_fake.find_requests("POST", "/v1/customers")
    assert {r.idempotency_key for r in asked} == {f"customer:{user.pk}"}
    # Created once: later purchases reuse it without asking Stripe.
    stripe_customer_ensure(user=user)
    assert len(stripe_fake.find_requests("POST", "/v1/customers")) == len(asked)


def test_a_plan_opens_a_subscription_checkout_for_the_plan_price(client, stripe_fake, plan, buyer):
    client.force_login(buyer)
    session_id = buy(client, reverse("buy_plan", args=[plan.pk]))
    session = stripe_fake.get(session_id)
    assert session["mode"] == "subscription"
    assert session["customer"] == buyer.stripe_customer.customer_id
    sent = stripe_fake.find_requests("POST", "/v1/checkout/sessions")[0].params
    assert sent["line_items"] == [{"price": "price_test_plus_monthly", "quantity": "1"}]
    assert sent["subscription_data"]["metadata"] == {"user_id": str(buyer.pk), "plan_id": str(plan.pk)}


def test_a_completed_but_unpaid_session_grants_nothing_until_the_payment_clears(client, stripe_fake, pack, buyer):
    session_id = start_checkout(buyer, pack)
    assert deliver(client, stripe_fake.complete_checkout(session_id, paid=False)).status_code == 200
    assert balance_of(buyer) == 0

    client.force_login(buyer)
    waiting = client.get(reverse("checkout_success"), {"session_id": session_id}).content.decode()
    assert "Your bank is still confirming the payment of $5.00" in waiting

    assert deliver(client, stripe_fake.async_payment_succeeded(session_id)).status_code == 200
    assert balance_of(buyer) == 5_000
    done = client.get(reverse("checkout_success"), {"session_id": session_id}).content.decode()
    assert "5,000 credits</strong> were added" in done


def test_a_failed_delayed_payment_grants_nothing_and_says_so(client, stripe_fake, pack, buyer):
    session_id = start_checkout(buyer, pack)
    deliver(client, stripe_fake.complete_checkout(session_id, paid=False))
    assert deliver(client, stripe_fake.async_payment_failed(session_id)).status_code == 200
    assert balance_of(buyer) == 0
    assert not LedgerEntry.objects.filter(account__user=buyer).exists()

    client.force_login(buyer)
    page = client.get(reverse("checkout_success"), {"session_id": session_id}).content.decode()
    assert "The payment did not go through" in page
    assert "hx-trigger" not in page  # final: the page stops polling


def test_the_success_page_waits_for_the_webhook_then_shows_the_new_balance(client, stripe_fake, pack, buyer):
    client.force_login(buyer)
    session_id = buy(client, reverse("buy_pack", args=[pack.pk]))
    url = reverse("checkout_success")

    page = client.get(url, {"session_id": session_id}).content.decode()
    assert "Your 5,000 credits arrive in a moment" in page
    assert 'hx-trigger="every 2s"' in page

    deliver(client, stripe_fake.complete_checkout(session_id))
    fragment = client.get(url, {"session_id": session_id}, headers={"HX-Request": "true"}).content.decode()
    assert fragment.lstrip().startswith('<section id="checkout-status"')
    assert "<html" not in fragment
    assert '<strong class="checkout-balance">5,000</strong>' in fragment
    assert "hx-trigger" not in fragment


def test_the_success_page_credits_a_paid_session_even_if_the_webhook_is_late(client, stripe_fake, pack, buyer):
    session_id = start_checkout(buyer, pack)
    stripe_fake.complete_checkout(session_id)  # paid; the webhook has not arrived
    client.force_login(buyer)
    page = client.get(reverse("checkout_success"), {"session_id": session_id}).content.decode()
    assert "5,000 credits</strong> were added" in page
    assert balance_of(buyer) == 5_000
    # The webhook, when it comes, finds the work done.
    deliver(client, stripe_fake.events_of_type("checkout.session.completed")[-1])
    assert balance_of(buyer) == 5_000


def test_another_users_session_id_reveals_nothing(client, stripe_fake, pack, buyer):
    session_id = start_checkout(buyer, pack)
    deliver(client, stripe_fake.complete_checkout(session_id))
    client.force_login(UserFactory())
    assert client.get(reverse("checkout_success"), {"session_id": session_id}).status_code == 404
    assert client.get(reverse("checkout_success"), {"session_id": "cs_test_made_up"}).status_code == 404
    assert client.get(reverse("checkout_success")).status_code == 404


def test_the_cancel_page_says_nothing_was_charged(client, buyer):
    client.force_login(buyer)
    page = client.get(reverse("checkout_cancel")).content.decode()
    assert "nothing was charged" in page


def test_the_billing_page_offers_packs_and_plans_with_prices_from_cents(client, stripe_fake, pack, plan, buyer):
    client.force_login(buyer)
    page = client.get(reverse("billing")).content.decode()
    assert "$5.00" in page and "5,000</strong> credits, once" in page
    assert "$12.00 <span>/ month</span>" in page and "15,000</strong> credits every month" in page
    assert f'action="{reverse("buy_pack", args=[pack.pk])}"' in page
    assert f'action="{reverse("buy_plan", args=[plan.pk])}"' in page
    assert "csrfmiddlewaretoken" in page
    assert "not configured" not in page
    assert "Manage plan and invoices" not in page  # nothing to manage before a first purchase


def test_without_stripe_keys_the_billing_page_says_payments_are_off_and_nothing_breaks(client, settings, buyer):
    settings.STRIPE_SECRET_KEY = ""
    client.force_login(buyer)
    page = client.get(reverse("billing")).content.decode()
    assert "Payments are not configured on this site yet" in page
    assert "/billing/buy/" not in page and "Buy more below" not in page
    pack = CreditPack.objects.create(name="P", credits=10, price_cents=100, stripe_price_id="price_unconfigured")
    response = client.post(reverse("buy_pack", args=[pack.pk]), follow=True)
    assert response.redirect_chain[0] == (reverse("billing"), 303)
    assert "Payments are not configured on this site." in response.content.decode()
    assert not CheckoutSession.objects.exists() and not StripeCustomer.objects.exists()
    assert client.post(reverse("billing_portal")).status_code == 303
    # A webhook cannot be verified without its secret; Stripe keeps retrying meanwhile.
    settings.STRIPE_WEBHOOK_SECRET = ""
    assert client.post("/webhooks/stripe/", b"{}", content_type="application/json").status_code == 503


def test_stripe_trouble_at_checkout_tells_the_buyer_nothing_was_charged(client, stripe_fake, pack, buyer):
    stripe_fake.fail_requests("POST", "/v1/checkout/sessions", status=500)
    client.force_login(buyer)
    response = client.post(reverse("buy_pack", args=[pack.pk]), follow=True)
    assert response.redirect_chain[0] == (reverse("billing"), 303)
    assert "Payments are unavailable right now. Nothing was charged" in response.content.decode()
    assert not CheckoutSession.objects.exists()


def test_a_second_plan_is_refused_while_one_is_current(client, stripe_fake, plan, buyer):
    session_id = start_checkout(buyer, plan)
    deliver(client, stripe_fake.complete_checkout(session_id))
    client.force_login(buyer)
    page = client.get(reverse("billing")).content.decode()
    assert "Your current plan." in page and "Subscribe to Plus" not in page

    response = client.post(reverse("buy_plan", args=[plan.pk]), follow=True)
    assert "You already have a monthly plan" in response.content.decode()
    assert len(stripe_fake.objects("checkout.session")) == 1


def test_the_portal_button_opens_stripes_portal_for_the_users_customer(client, stripe_fake, pack, buyer):
    client.force_login(buyer)
    response = client.post(reverse("billing_portal"), follow=True)
    assert "nothing to manage yet" in response.content.decode()

    start_checkout(buyer, pack)
    assert "Manage plan and invoices" in client.get(reverse("billing")).content.decode()
    response = client.post(reverse("billing_portal"))
    assert response.status_code == 303
    assert response["Location"].startswith("https://billing.stripe.test/p/session/bps_")
    portal = stripe_fake.find_requests("POST", "/v1/billing_portal/sessions")[0].params
    assert portal["customer"] == buyer.stripe_customer.customer_id
    assert portal["return_url"] == "http://testserver/billing/"


def test_buying_is_rate_limited(client, settings, stripe_fake, pack, buyer, stopped_clock):
    settings.RATELIMIT_CHECKOUT = "2/m"
    client.force_login(buyer)
    url = reverse("buy_pack", args=[pack.pk])
    assert [client.post(url).status_code for _ in range(3)] == [303, 303, 429]
    assert len(stripe_fake.objects("checkout.session")) == 2


def test_buying_needs_a_signed_in_user_and_a_post(client, stripe_fake, pack):
    url = reverse("buy_pack", args=[pack.pk])
    assert "/accounts/login/" in client.post(url)["Location"]
    client.force_login(UserFactory())
    assert client.get(url).status_code == 405
    pack.active = False
    pack.save()
    assert client.post(url).status_code == 404
    assert not stripe_fake.objects("checkout.session")


def test_the_billing_page_lets_its_forms_lead_to_stripes_checkout_and_portal(client, settings, buyer):
    settings.CONTENT_SECURITY_POLICY = settings.CONTENT_SECURITY_POLICY_REPORT_ONLY  # enforced, as in production
    client.force_login(buyer)
    policy = client.get(reverse("billing"))["Content-Security-Policy"]
    form_action = next(d for d in policy.split(";") if d.strip().startswith("form-action"))
    assert "https://checkout.stripe.com" in form_action and "https://billing.stripe.com" in form_action
    other_page = client.get(reverse("checkout_cancel"))["Content-Security-Policy"]
    assert "https://billing.stripe.com" not in other_page


def test_back_to_the_billing_page_and_another_button_buys_the_other_thing(client, stripe_fake, pack, plan, buyer):
    # The browser brings the page back from its cache with Back: the same `attempt` value sits in
    # every buy form. Stripe keeps a key 24 hours and refuses it with other parameters.
    big = CreditPack.objects.create(name="Studio", credits=30_000, price_cents=2_000, stripe_price_id="price_t_studio")
    stripe_fake.add_price(big.stripe_price_id, 2_000, "usd")
    client.force_login(buyer)
    page = client.get(reverse("billing")).content.decode()
    attempts = set(re.findall(r'name="attempt" value="([0-9a-f]{32})"', page))
    assert len(attempts) == 1  # one page view, one value, in every form
    (attempt,) = attempts

    first = client.post(reverse("buy_pack", args=[pack.pk]), {"attempt": attempt})
    second = client.post(reverse("buy_pack", args=[big.pk]), {"attempt": attempt})
    third = client.post(reverse("buy_plan", args=[plan.pk]), {"attempt": attempt}, follow=True)
    assert "Payments are unavailable" not in third.content.decode()
    sessions = [r["Location"].rsplit("/", 1)[-1] for r in (first, second)] + [
        third.redirect_chain[0][0].rsplit("/", 1)[-1]
    ]
    assert [stripe_fake.get(s)["amount_total"] for s in sessions] == [500, 2_000, 1_200]
    # A double-click on one button is still one Checkout session.
    again = client.post(reverse("buy_pack", args=[big.pk]), {"attempt": attempt})
    assert again["Location"] == second["Location"]
