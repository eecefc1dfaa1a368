"""The fake Stripe server, driven by the real `stripe` library over real HTTP (no patching)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import stripe

from fakes.stripe import FakeStripe, event_payload, parse_form, sign, signed_event

WEBHOOK_SECRET = "whsec_test_secret"


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as server:
        server.add_price("price_pack_100", 500, "usd")
        server.add_price("price_pack_500", 2000, "usd")
        server.add_price("price_pro_monthly", 1500, "usd", recurring=True, product_name="Pro plan")
        yield server


@pytest.fixture
def client(fake: FakeStripe) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_x", base_addresses={"api": fake.url}, max_network_retries=0)


def _pack_session(client: stripe.StripeClient, **extra: object) -> stripe.checkout.Session:
    params = {
        "mode": "payment",
        "line_items": [{"price": "price_pack_100", "quantity": 3}],
        "success_url": "https://dreampixel.test/billing/success?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://dreampixel.test/billing/cancel",
        "client_reference_id": "7",
        "metadata": {"user_id": "7", "pack": "100"},
        **extra,
    }
    return client.v1.checkout.sessions.create(params=params)


def _subscription_session(client: stripe.StripeClient, customer: str) -> stripe.checkout.Session:
    return client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer,
            "line_items": [{"price": "price_pro_monthly", "quantity": 1}],
            "success_url": "https://dreampixel.test/ok",
            "cancel_url": "https://dreampixel.test/cancel",
            "subscription_data": {"metadata": {"user_id": "7"}},
        }
    )


def test_parse_form_builds_nested_dicts_and_lists() -> None:
    pairs = [
        ("line_items[0][price]", "price_x"),
        ("line_items[0][quantity]", "2"),
        ("line_items[1][price]", "price_y"),
        ("metadata[user_id]", "7"),
        ("metadata[0]", "stays a dict key"),
        ("subscription_data[metadata][k]", "v"),
        ("expand[]", "line_items"),
        ("expand[]", "customer"),
    ]
    assert parse_form(pairs) == {
        "line_items": [{"price": "price_x", "quantity": "2"}, {"price": "price_y"}],
        "metadata": {"user_id": "7", "0": "stays a dict key"},
        "subscription_data": {"metadata": {"k": "v"}},
        "expand": ["line_items", "customer"],
    }


def test_requests_need_a_test_secret_key(fake: FakeStripe) -> None:
    live = stripe.StripeClient("sk_live_nope", base_addresses={"api": fake.url}, max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError) as caught:
        live.v1.customers.create(params={"email": "a@example.test"})
    assert caught.value.http_status == 401
    assert caught.value.json_body["error"]["type"] == "invalid_request_error"
    assert fake.objects("customer") == []


def test_create_and_retrieve_customer(client: stripe.StripeClient, fake: FakeStripe) -> None:
    customer = client.v1.customers.create(params={"email": "ada@example.test", "metadata": {"user_id": "7"}})
    assert customer.id.startswith("cus_")
    assert customer.object == "customer"
    assert customer.livemode is False
    assert customer.metadata["user_id"] == "7"

    again = client.v1.customers.retrieve(customer.id)
    assert again.email == "ada@example.test"
    assert fake.requests[0].method == "POST"
    assert fake.requests[0].params == {"email": "ada@example.test", "metadata": {"user_id": "7"}}
    # The library sends an Idempotency-Key on every POST, generated if not given.
    assert fake.requests[0].idempotency_key


def test_checkout_session_has_amount_customer_and_url(client: stripe.StripeClient, fake: FakeStripe) -> None:
    customer = client.v1.customers.create(params={"email": "ada@example.test"})
    session = _pack_session(client, customer=customer.id)

    assert session.id.startswith("cs_test_")
    assert session.object == "checkout.session"
    assert session.amount_total == 1500
    assert session.currency == "usd"
    assert session.customer == customer.id
    assert session.client_reference_id == "7"
    assert session.metadata.to_dict() == {"user_id": "7", "pack": "100"}
    assert session.status == "open"
    assert session.payment_status == "unpaid"
    assert session.url == f"https://checkout.stripe.test/c/pay/{session.id}"
    assert session.payment_intent is None  # created only when the buyer pays
    sent = fake.find_requests("POST", "/v1/checkout/sessions")[0].params
    assert sent["line_items"] == [{"price": "price_pack_100", "quantity": "3"}]

    items = client.v1.checkout.sessions.line_items.list(session.id)
    assert [(i.price.id, i.quantity, i.amount_total) for i in items.data] == [("price_pack_100", 3, 1500)]


def test_checkout_rejects_what_stripe_rejects(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        _pack_session(client, line_item=[{"price": "price_pack_100"}])
    assert unknown.value.code == "parameter_unknown"
    assert unknown.value.param == "line_item"

    with pytest.raises(stripe.InvalidRequestError) as missing_price:
        _pack_session(client, line_items=[{"price": "price_nope", "quantity": 1}])
    assert missing_price.value.http_status == 400
    assert missing_price.value.code == "resource_missing"

    with pytest.raises(stripe.InvalidRequestError, match="recurring price"):
        _pack_session(client, line_items=[{"price": "price_pro_monthly", "quantity": 1}])


def test_idempotency_key_returns_the_same_session(client: stripe.StripeClient, fake: FakeStripe) -> None:
    params = {"mode": "payment", "line_items": [{"price": "price_pack_500", "quantity": 1}]}
    first = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "buy-42"})
    second = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "buy-42"})

    assert first.id == second.id
    assert len(fake.objects("checkout.session")) == 1
    assert second.last_response.headers["Idempotent-Replayed"] == "true"

    with pytest.raises(stripe.IdempotencyError):
        client.v1.checkout.sessions.create(
            params={**params, "client_reference_id": "other"}, options={"idempotency_key": "buy-42"}
        )


def test_an_idempotency_key_with_other_parameters_is_refused_for_24_hours_then_new(
    client: stripe.StripeClient, fake: FakeStripe
) -> None:
    # Stripe's rule: the same key with other parameters is an idempotency_error while the key is
    # kept (24 hours); after that it is a new request.
    fake.set_time(1_800_000_000)
    pack = {"mode": "payment", "line_items": [{"price": "price_pack_500", "quantity": 1}]}
    other = {"mode": "payment", "line_items": [{"price": "price_pack_500", "quantity": 2}]}
    client.v1.checkout.sessions.create(params=pack, options={"idempotency_key": "page-view-1"})
    fake.advance_time(23 * 3600)
    with pytest.raises(stripe.IdempotencyError) as refused:
        client.v1.checkout.sessions.create(params=other, options={"idempotency_key": "page-view-1"})
    assert refused.value.http_status == 400
    assert refused.value.error.type == "idempotency_error"
    fake.advance_time(3600)
    again = client.v1.checkout.sessions.create(params=other, options={"idempotency_key": "page-view-1"})
    assert again.amount_total == 2 * (client.v1.prices.retrieve("price_pack_500").unit_amount or 0)


def test_completed_payment_checkout_reads_back_as_paid(client: stripe.StripeClient, fake: FakeStripe) -> None:
    session = _pack_session(client)
    event = fake.complete_checkout(session.id)

    assert event["id"].startswith("evt_")
    assert event["object"] == "event"
    assert event["type"] == "checkout.session.completed"
    assert event["livemode"] is False
    assert event["api_version"] == stripe.api_version
    snapshot = event["data"]["object"]
    assert snapshot["id"] == session.id
    assert snapshot["payment_status"] == "paid"
    assert snapshot["client_reference_id"] == "7"
    assert snapshot["metadata"] == {"user_id": "7", "pack": "100"}

    paid = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent", "line_items"]})
    assert paid.status == "complete"
    assert paid.payment_status == "paid"
    assert paid.url is None
    assert paid.payment_intent.status == "succeeded"
    assert paid.payment_intent.amount_received == 1500
    assert paid.line_items.data[0].price.id == "price_pack_100"
    charge = client.v1.charges.retrieve(paid.payment_intent.latest_charge)
    assert charge.payment_intent == paid.payment_intent.id
    assert charge.paid is True
    assert charge.amount == 1500


def test_delayed_payment_completes_unpaid_then_succeeds(client: stripe.StripeClient, fake: FakeStripe) -> None:
    session = _pack_session(client)
    completed = fake.complete_checkout(session.id, paid=False)
    assert completed["data"]["object"]["status"] == "complete"
    assert completed["data"]["object"]["payment_status"] == "unpaid"

    succeeded = fake.async_payment_succeeded(session.id)
    assert succeeded["type"] == "checkout.session.async_payment_succeeded"
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"

    other = _pack_session(client)
    fake.complete_checkout(other.id, paid=False)
    failed = fake.async_payment_failed(other.id)
    assert failed["type"] == "checkout.session.async_payment_failed"
    assert failed["data"]["object"]["payment_status"] == "unpaid"


def test_list_sessions_filters_by_created_status_and_pages(client: stripe.StripeClient, fake: FakeStripe) -> None:
    fake.set_time(1_700_000_000)
    old = _pack_session(client)
    fake.advance_time(3_600)
    newer = _pack_session(client)
    fake.advance_time(60)
    newest = _pack_session(client)
    fake.complete_checkout(newest.id)

    recent = client.v1.checkout.sessions.list(params={"created": {"gte": 1_700_000_000 + 3_600}})
    assert recent["object"] == "list"
    assert recent.url == "/v1/checkout/sessions"
    assert [s.id for s in recent.data] == [newest.id, newer.id]  # newest first
    assert recent.has_more is False

    first_page = client.v1.checkout.sessions.list(params={"limit": 1})
    assert [s.id for s in first_page.data] == [newest.id]
    assert first_page.has_more is True
    second_page = client.v1.checkout.sessions.list(params={"limit": 1, "starting_after": newest.id})
    assert [s.id for s in second_page.data] == [newer.id]
    assert [s.id for s in first_page.auto_paging_iter()] == [newest.id, newer.id, old.id]

    open_ones = client.v1.checkout.sessions.list(params={"status": "open"})
    assert {s.id for s in open_ones.data} == {old.id, newer.id}


def test_billing_portal_session(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={"email": "ada@example.test"})
    portal = client.v1.billing_portal.sessions.create(
        params={"customer": customer.id, "return_url": "https://dreampixel.test/account"}
    )
    assert portal.object == "billing_portal.session"
    assert portal.customer == customer.id
    assert portal.url.startswith("https://billing.stripe.test/p/session/bps_")
    assert portal.return_url == "https://dreampixel.test/account"


def test_subscription_checkout_creates_subscription_and_paid_invoice(
    client: stripe.StripeClient, fake: FakeStripe
) -> None:
    customer = client.v1.customers.create(params={"email": "ada@example.test"})
    session = _subscription_session(client, customer.id)
    event = fake.complete_checkout(session.id)

    snapshot = event["data"]["object"]
    assert snapshot["mode"] == "subscription"
    assert snapshot["customer"] == customer.id
    assert snapshot["payment_status"] == "paid"
    assert snapshot["payment_intent"] is None  # subscription-mode sessions link an invoice instead

    subscription = client.v1.subscriptions.retrieve(snapshot["subscription"])
    assert subscription.status == "active"
    assert subscription.customer == customer.id
    assert subscription.metadata["user_id"] == "7"  # from subscription_data[metadata]
    item = subscription["items"].data[0]  # `.items` attribute works too, but reads like dict.items
    assert item.price.id == "price_pro_monthly"
    assert item.current_period_end > item.current_period_start

    invoice = client.v1.invoices.retrieve(snapshot["invoice"])
    assert invoice.status == "paid"
    assert invoice.amount_paid == 1500
    assert invoice.billing_reason == "subscription_create"
    assert invoice["subscription"] == subscription.id  # legacy field, kept by default (untyped in stripe 16)
    assert invoice.parent.subscription_details.subscription == subscription.id
    assert invoice.lines.data[0].pricing.price_details.price == "price_pro_monthly"
    assert invoice.payments.data[0].payment.payment_intent.startswith("pi_")
    assert subscription.latest_invoice == invoice.id


def test_renewal_invoice_is_a_paid_subscription_cycle(client: stripe.StripeClient, fake: FakeStripe) -> None:
    customer = client.v1.customers.create(params={"email": "ada@example.test"})
    session = _subscription_session(client, customer.id)
    sub_id = fake.complete_checkout(session.id)["data"]["object"]["subscription"]
    first_period_end = fake.get(sub_id)["items"]["data"][0]["current_period_end"]

    fake.advance_time(30 * 86_400)
    event = fake.pay_invoice(sub_id)
    assert event["type"] == "invoice.paid"
    renewal = event["data"]["object"]
    assert renewal["billing_reason"] == "subscription_cycle"
    assert renewal["status"] == "paid"
    assert renewal["parent"]["subscription_details"]["subscription"] == sub_id
    assert renewal["lines"]["data"][0]["period"]["start"] == first_period_end

    invoices = client.v1.invoices.list(params={"subscription": sub_id, "status": "paid"})
    assert invoices.data[0].id == renewal["id"]
    assert len(invoices.data) == 2
    assert client.v1.subscriptions.retrieve(sub_id).latest_invoice == renewal["id"]


def test_subscription_update_and_cancel_events(client: stripe.StripeClient, fake: FakeStripe) -> None:
    customer = client.v1.customers.create(params={"email": "ada@example.test"})
    sub_id = fake.complete_checkout(_subscription_session(client, customer.id).id)["data"]["object"]["subscription"]

    updated = fake.update_subscription(sub_id, cancel_at_period_end=True)
    assert updated["type"] == "customer.subscription.updated"
    assert updated["data"]["previous_attributes"]["cancel_at_period_end"] is False
    assert updated["data"]["object"]["cancel_at"] is not None

    deleted = fake.cancel_subscription(sub_id)
    assert deleted["type"] == "customer.subscription.deleted"
    assert client.v1.subscriptions.retrieve(sub_id).status == "canceled"
    # Stripe hides canceled subscriptions from the default list.
    assert client.v1.subscriptions.list(params={"customer": customer.id}).data == []


def test_partial_then_full_refund(client: stripe.StripeClient, fake: FakeStripe) -> None:
    session = _pack_session(client)
    pi_id = fake.complete_checkout(session.id)["data"]["object"]["payment_intent"]

    partial, refund = fake.refund(pi_id, amount=500)
    assert partial["type"] == "charge.refunded"
    assert partial["data"]["object"]["amount_refunded"] == 500
    assert partial["data"]["object"]["refunded"] is False
    assert refund["amount"] == 500
    assert refund["payment_intent"] == pi_id

    charge_id = refund["charge"]
    full, _ = fake.refund(charge_id)
    assert full["data"]["object"]["amount_refunded"] == 1500
    assert full["data"]["object"]["refunded"] is True

    charge = client.v1.charges.retrieve(charge_id)
    assert charge.amount_refunded == 1500
    assert len(charge.refunds.data) == 2
    assert client.v1.refunds.retrieve(refund["id"]).charge == charge_id
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.refunds.create(params={"charge": charge_id})
    assert again.value.code == "charge_already_refunded"


def test_refund_through_the_api(client: stripe.StripeClient, fake: FakeStripe) -> None:
    pi_id = fake.complete_checkout(_pack_session(client).id)["data"]["object"]["payment_intent"]
    refund = client.v1.refunds.create(params={"payment_intent": pi_id, "amount": 100})
    assert refund.status == "succeeded"
    assert fake.events_of_type("charge.refunded")[-1]["data"]["object"]["amount_refunded"] == 100
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.refunds.create(params={"payment_intent": pi_id, "amount": 5_000})
    assert too_much.value.code == "amount_too_large"


def test_dispute_lost(client: stripe.StripeClient, fake: FakeStripe) -> None:
    pi_id = fake.complete_checkout(_pack_session(client).id)["data"]["object"]["payment_intent"]
    charge_id = fake.get(pi_id)["latest_charge"]

    created = fake.dispute(charge_id)
    assert created["type"] == "charge.dispute.created"
    dispute = created["data"]["object"]
    assert dispute["charge"] == charge_id
    assert dispute["payment_intent"] == pi_id
    assert dispute["status"] == "needs_response"
    assert client.v1.charges.retrieve(charge_id).disputed is True

    closed = fake.close_dispute(dispute["id"], won=False)
    assert closed["type"] == "charge.dispute.closed"
    assert closed["data"]["object"]["status"] == "lost"
    assert client.v1.disputes.retrieve(dispute["id"]).status == "lost"


def test_unknown_id_raises_invalid_request_error(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.retrieve("cs_test_missing")
    assert caught.value.http_status == 404
    assert caught.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.retrieve("in_missing")


def test_legacy_fields_can_be_switched_off() -> None:
    with FakeStripe(legacy_fields=False) as fake:
        fake.add_price("price_m", 900, recurring=True)
        client = fake.client()
        customer = client.v1.customers.create(params={"email": "ada@example.test"})
        session = client.v1.checkout.sessions.create(
            params={
                "mode": "subscription",
                "customer": customer.id,
                "line_items": [{"price": "price_m", "quantity": 1}],
            }
        )
        event = fake.complete_checkout(session.id)
        invoice = client.v1.invoices.retrieve(event["data"]["object"]["invoice"])
        assert "subscription" not in invoice
        assert invoice.parent.subscription_details.subscription == event["data"]["object"]["subscription"]


def test_webhook_signature_is_the_real_scheme(client: stripe.StripeClient, fake: FakeStripe) -> None:
    event = fake.complete_checkout(_pack_session(client).id)
    payload = event_payload(event)

    verified = stripe.Webhook.construct_event(payload, sign(payload, WEBHOOK_SECRET), WEBHOOK_SECRET)
    assert verified.type == "checkout.session.completed"
    assert verified.data.object.id == event["data"]["object"]["id"]

    body, header = signed_event(event, WEBHOOK_SECRET)
    assert stripe.Webhook.construct_event(body.decode(), header, WEBHOOK_SECRET).id == event["id"]

    tampered = payload.replace(b'"paid"', b'"unpaid"')
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(tampered, sign(payload, WEBHOOK_SECRET), WEBHOOK_SECRET)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, sign(payload, "whsec_other"), WEBHOOK_SECRET)

    stale = sign(payload, WEBHOOK_SECRET, timestamp=int(time.time()) - 301)
    with pytest.raises(stripe.SignatureVerificationError, match="tolerance"):
        stripe.Webhook.construct_event(payload, stale, WEBHOOK_SECRET)


def test_failed_renewal_makes_the_subscription_past_due(client: stripe.StripeClient, fake: FakeStripe) -> None:
    customer = client.v1.customers.create(params={"email": "ada@example.test"})
    sub_id = fake.complete_checkout(_subscription_session(client, customer.id).id)["data"]["object"]["subscription"]

    event = fake.fail_invoice(sub_id)
    assert event["type"] == "invoice.payment_failed"
    assert event["data"]["object"]["status"] == "open"
    assert client.v1.subscriptions.retrieve(sub_id).status == "past_due"


def test_concurrent_retries_with_one_key_make_one_session(client: stripe.StripeClient, fake: FakeStripe) -> None:
    params = {"mode": "payment", "line_items": [{"price": "price_pack_100", "quantity": 1}]}

    def create(_: int) -> str:
        return client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "same"}).id

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = set(pool.map(create, range(16)))
    assert len(ids) == 1
    assert len(fake.objects("checkout.session")) == 1
    assert len(fake.find_requests("POST", "/v1/checkout/sessions")) == 16


def test_invoice_payments_lead_from_a_payment_intent_to_its_invoice(
    client: stripe.StripeClient, fake: FakeStripe
) -> None:
    customer = client.v1.customers.create(params={"email": "ada@example.test"})
    event = fake.complete_checkout(_subscription_session(client, customer.id).id)
    invoice_id = event["data"]["object"]["invoice"]
    pi_id = fake.get(invoice_id)["payments"]["data"][0]["payment"]["payment_intent"]

    found = client.v1.invoice_payments.list(params={"payment": {"type": "payment_intent", "payment_intent": pi_id}})
    assert [(p.invoice, p.payment.payment_intent, p.status) for p in found.data] == [(invoice_id, pi_id, "paid")]
    assert client.v1.invoice_payments.list(params={"invoice": invoice_id}).data[0].invoice == invoice_id
    pack_pi = fake.complete_checkout(_pack_session(client).id)["data"]["object"]["payment_intent"]
    none = client.v1.invoice_payments.list(params={"payment": {"type": "payment_intent", "payment_intent": pack_pi}})
    assert none.data == []


def test_injected_failures_raise_at_once_then_stop(fake: FakeStripe) -> None:
    client = fake.client(max_network_retries=2)  # Stripe-Should-Retry: false wins over retries
    session = _pack_session(client)
    fake.fail_requests("GET", r"/v1/checkout/sessions/cs_\w+", status=500, times=1)
    with pytest.raises(stripe.APIError) as caught:
        client.v1.checkout.sessions.retrieve(session.id)
    assert caught.value.http_status == 500
    assert len(fake.find_requests("GET", f"/v1/checkout/sessions/{session.id}")) == 1
    assert client.v1.checkout.sessions.retrieve(session.id).id == session.id
    # Other paths are untouched.
    fake.fail_requests("GET", "/v1/refunds", status=503, times=2)
    assert client.v1.checkout.sessions.list().data
