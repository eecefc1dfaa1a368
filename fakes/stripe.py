"""A fake Stripe API for tests: a real HTTP server on loopback that the real `stripe` library talks to.

Point a client at it with ``FakeStripe.client()`` or
``stripe.StripeClient("sk_test_x", base_addresses={"api": fake.url})``. Tests move state the way
Stripe would (``complete_checkout``, ``pay_invoice``, ``refund``, ...) and get back the matching
Event dict, which ``event_payload`` and ``sign`` turn into a webhook body and a real
``Stripe-Signature`` header.

Object shapes follow the API version the installed library pins (``stripe.api_version``). A few
fields that newer API versions dropped are kept by default (see ``LEGACY_FIELDS``, e.g.
``invoice.subscription``); code under test should read the current shapes, e.g.
``invoice.parent.subscription_details.subscription``, and ``FakeStripe(legacy_fields=False)``
proves it does. Responses reach code as ``StripeObject``s, which in stripe 16 are not dicts: use
``obj["key"]``, attributes or ``obj.to_dict()``, never ``obj.get()``.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import re
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx
import stripe
import stripe.params
import stripe.params.billing_portal
import stripe.params.checkout

Obj = dict[str, Any]

API_VERSION: str = stripe.api_version
_ALNUM = string.ascii_letters + string.digits
# Approximate lengths: code under test must never depend on exact calendar arithmetic.
_INTERVAL_SECONDS = {"day": 86_400, "week": 7 * 86_400, "month": 30 * 86_400, "year": 365 * 86_400}
# Keys whose children are arbitrary strings, so `metadata[0]=x` must stay a dict, not become a list.
_FREE_FORM_KEYS = frozenset({"metadata"})
# Fields the library's pinned API version no longer returns (Stripe moved them in 2025-03-31
# "basil"), kept by default because older handlers read them. Current equivalents:
# invoice.subscription -> invoice.parent.subscription_details.subscription; invoice.paid ->
# invoice.status == "paid"; subscription.current_period_* -> items.data[].current_period_*;
# invoice line .subscription / .price -> .parent.subscription_item_details.subscription / .pricing.
LEGACY_FIELDS: dict[str, tuple[str, ...]] = {
    "invoice": ("subscription", "paid"),
    "subscription": ("current_period_start", "current_period_end"),
    "line_item": ("subscription", "price"),
}


# Objects Stripe shows without `livemode` (their published example and the library's type).
_NO_LIVEMODE = frozenset({"refund"})


# --------------------------------------------------------------------------------------------------
# Webhook helpers


def event_payload(event: Mapping[str, Any]) -> bytes:
    """The webhook body Stripe would POST for ``event`` (pretty-printed JSON, as Stripe sends it)."""
    return json.dumps(event, indent=2).encode("utf-8")


def sign(payload: bytes | str, secret: str, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header value for ``payload``, made with the library's own scheme.

    ``timestamp`` defaults to now; pass an old one to exercise the 300 s tolerance.
    """
    text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
    return stripe.WebhookSignature.generate_signature_header(text, secret, timestamp=timestamp)


def signed_event(event: Mapping[str, Any], secret: str, timestamp: int | None = None) -> tuple[bytes, str]:
    """``(body, Stripe-Signature header)`` ready to POST to a webhook view."""
    body = event_payload(event)
    return body, sign(body, secret, timestamp)


# --------------------------------------------------------------------------------------------------
# Form decoding


def _split_key(key: str) -> list[str]:
    match = re.fullmatch(r"([^\[\]]+)((?:\[[^\[\]]*\])*)", key)
    if match is None:
        raise ValueError(f"Invalid parameter name: {key}")
    return [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]


def _listify(node: Any, key: str | None) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v, k) for k, v in node.items()}
    indexes = list(converted)
    if key not in _FREE_FORM_KEYS and indexes and all(k.isdigit() for k in indexes):
        ordered = sorted(indexes, key=int)
        if [int(k) for k in ordered] == list(range(len(ordered))):
            return [converted[k] for k in ordered]
    return converted


def parse_form(pairs: Iterable[tuple[str, str]]) -> Obj:
    """Decode Stripe's bracketed form encoding into nested dicts and lists.

    ``line_items[0][price]=p`` -> ``{"line_items": [{"price": "p"}]}``; ``expand[]=a`` appends.
    Values stay strings, as they are on the wire; handlers coerce what they use.
    """
    root: Obj = {}
    for raw_key, value in pairs:
        parts = _split_key(raw_key)
        node = root
        for depth, part in enumerate(parts):
            name = str(len(node)) if part == "" else part
            if depth == len(parts) - 1:
                if isinstance(node.get(name), dict):
                    raise ValueError(f"Invalid parameter: {raw_key} mixes a value and a hash")
                node[name] = value
            else:
                child = node.setdefault(name, {})
                if not isinstance(child, dict):
                    raise ValueError(f"Invalid parameter: {raw_key} mixes a value and a hash")
                node = child
    return _listify(root, None)


# --------------------------------------------------------------------------------------------------
# Errors


class _ApiError(Exception):
    """Raised inside handlers; becomes Stripe's error JSON, which the library maps to its exceptions."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param

    def body(self) -> Obj:
        error: Obj = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        return {"error": error}


def _missing(param: str) -> _ApiError:
    return _ApiError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)


def _int(value: Any, param: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _ApiError(400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=param) from None


def _bool(value: Any, param: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise _ApiError(400, f"Invalid boolean: {value}", code="parameter_invalid_boolean", param=param)


def _metadata(value: Any, param: str = "metadata") -> dict[str, str]:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise _ApiError(400, f"Invalid object for {param}", code="parameter_invalid_object", param=param)
    return {str(k): str(v) for k, v in value.items()}


def _as_wire(value: Any) -> str:
    # List filters compare against form values, which are always strings.
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _allowed(module: Any, name: str) -> frozenset[str] | None:
    # The library's own TypedDicts name every parameter Stripe accepts, so unknown ones can be
    # rejected like Stripe does ("Received unknown parameter"). They also list request options
    # (api_key, ...), which never reach the wire, so leaving them in is harmless.
    params_class = getattr(module, name, None)
    if params_class is None:
        return None
    return frozenset(params_class.__required_keys__ | params_class.__optional_keys__)


# --------------------------------------------------------------------------------------------------
# Server


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: Obj
    idempotency_key: str | None
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 0
    request_id: str = ""


@dataclass
class _StoredResponse:
    endpoint: tuple[str, str]
    fingerprint: tuple[tuple[str, str], ...]
    status: int
    body: bytes
    request_id: str
    stored_at: int = 0  # the fake's clock


# Stripe keeps an idempotency key's result for 24 hours; within them the same key with other
# parameters (or on another endpoint) is refused with `idempotency_error`.
IDEMPOTENCY_KEY_SECONDS = 24 * 3600


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: str
    allowed: frozenset[str] | None
    unsupported: frozenset[str] = frozenset()


_P = stripe.params
_PC = stripe.params.checkout
_PB = stripe.params.billing_portal
_ID = r"([^/]+)"
_ROUTE_TABLE: list[tuple[str, str, str, Any, str, frozenset[str]]] = [
    ("POST", "/v1/customers", "_create_customer", _P, "CustomerCreateParams", frozenset()),
    ("GET", "/v1/customers", "_list_customers", _P, "CustomerListParams", frozenset()),
    ("GET", f"/v1/customers/{_ID}", "_retrieve_customer", _P, "CustomerRetrieveParams", frozenset()),
    ("POST", f"/v1/customers/{_ID}", "_update_customer", _P, "CustomerUpdateParams", frozenset()),
    (
        "POST",
        "/v1/checkout/sessions",
        "_create_session",
        _PC,
        "SessionCreateParams",
        # These change amounts or shapes the fake does not model; failing loudly beats a wrong total.
        frozenset({"discounts", "optional_items", "setup_intent_data", "customer_account"}),
    ),
    ("GET", "/v1/checkout/sessions", "_list_sessions", _PC, "SessionListParams", frozenset()),
    ("GET", f"/v1/checkout/sessions/{_ID}", "_retrieve_session", _PC, "SessionRetrieveParams", frozenset()),
    ("POST", f"/v1/checkout/sessions/{_ID}/expire", "_expire_session", _PC, "SessionExpireParams", frozenset()),
    (
        "GET",
        f"/v1/checkout/sessions/{_ID}/line_items",
        "_session_line_items",
        _PC,
        "SessionLineItemListParams",
        frozenset(),
    ),
    ("POST", "/v1/billing_portal/sessions", "_create_portal_session", _PB, "SessionCreateParams", frozenset()),
    ("GET", "/v1/prices", "_list_prices", _P, "PriceListParams", frozenset()),
    ("GET", f"/v1/prices/{_ID}", "_retrieve_price", _P, "PriceRetrieveParams", frozenset()),
    ("GET", f"/v1/products/{_ID}", "_retrieve_product", _P, "ProductRetrieveParams", frozenset()),
    ("GET", "/v1/invoices", "_list_invoices", _P, "InvoiceListParams", frozenset()),
    ("GET", f"/v1/invoices/{_ID}", "_retrieve_invoice", _P, "InvoiceRetrieveParams", frozenset()),
    ("GET", "/v1/invoice_payments", "_list_invoice_payments", _P, "InvoicePaymentListParams", frozenset()),
    ("GET", "/v1/subscriptions", "_list_subscriptions", _P, "SubscriptionListParams", frozenset()),
    ("GET", f"/v1/subscriptions/{_ID}", "_retrieve_subscription", _P, "SubscriptionRetrieveParams", frozenset()),
    (
        "POST",
        f"/v1/subscriptions/{_ID}",
        "_update_subscription_api",
        _P,
        "SubscriptionUpdateParams",
        frozenset({"items", "add_invoice_items", "billing_cycle_anchor", "discounts", "pause_collection", "trial_end"}),
    ),
    ("DELETE", f"/v1/subscriptions/{_ID}", "_cancel_subscription_api", _P, "SubscriptionCancelParams", frozenset()),
    ("GET", "/v1/payment_intents", "_list_payment_intents", _P, "PaymentIntentListParams", frozenset()),
    (
        "GET",
        f"/v1/payment_intents/{_ID}",
        "_retrieve_payment_intent",
        _P,
        "PaymentIntentRetrieveParams",
        frozenset(),
    ),
    ("GET", "/v1/charges", "_list_charges", _P, "ChargeListParams", frozenset()),
    ("GET", f"/v1/charges/{_ID}", "_retrieve_charge", _P, "ChargeRetrieveParams", frozenset()),
    ("POST", "/v1/refunds", "_create_refund_api", _P, "RefundCreateParams", frozenset()),
    ("GET", "/v1/refunds", "_list_refunds", _P, "RefundListParams", frozenset()),
    ("GET", f"/v1/refunds/{_ID}", "_retrieve_refund", _P, "RefundRetrieveParams", frozenset()),
    ("GET", "/v1/disputes", "_list_disputes", _P, "DisputeListParams", frozenset()),
    ("GET", f"/v1/disputes/{_ID}", "_retrieve_dispute", _P, "DisputeRetrieveParams", frozenset()),
    ("GET", "/v1/events", "_list_events", _P, "EventListParams", frozenset()),
    ("GET", f"/v1/events/{_ID}", "_retrieve_event", _P, "EventRetrieveParams", frozenset()),
]
_ROUTES = [
    _Route(method, re.compile(pattern), handler, _allowed(module, params_name), unsupported)
    for method, pattern, handler, module, params_name, unsupported in _ROUTE_TABLE
]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the library's pooled session expects
    timeout = 10  # idle keep-alive connections must not pin handler threads forever
    # Headers and body go out in separate writes; with Nagle on, delayed ACKs add ~40 ms a request.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fake = self.server.fake
        page = fake.pages(method, self.path, body) if fake.pages is not None else None
        if page is not None:  # the payments sandbox's pages (fakes/sandbox.py)
            status, payload, headers = page
        elif self.path == "/favicon.ico":  # what a browser on the checkout page asks for
            status, payload, headers = 204, b"", {"Content-Type": "image/x-icon"}
        elif self.path.startswith("/c/pay/"):
            status, payload, headers = fake._checkout_page(method, self.path)
        else:
            status, payload, headers = fake._handle(method, self.path, dict(self.headers), body)
            if method != "GET" and status == 200 and fake.after_change is not None:
                fake.after_change()  # outside the lock: e.g. the sandbox sends the new events
        self.send_response(status)
        if "Content-Type" not in headers:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean; `FakeStripe.requests` is the log


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeStripe


class FakeStripe:
    """In-memory Stripe behind a loopback HTTP server. Thread-safe: one lock guards all state."""

    def __init__(
        self, *, legacy_fields: bool = True, published: Mapping[str, Obj] | None = None, port: int = 0
    ) -> None:
        """``legacy_fields=False`` strips the pre-2025-03-31 fields listed in ``LEGACY_FIELDS`` from
        every response and event, to prove code under test reads only the current shapes.
        ``published`` (``published_fixtures()``) fills every object with the fields of Stripe's own
        published example of its resource that the fake does not set, so code under test meets
        the whole real shape (every field, nested ones included), not only what the fake models.
        ``port`` 0 takes a free one (tests); the payments sandbox listens on a fixed one."""
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.requests: list[RecordedRequest] = []
        self.events: list[Obj] = []
        self._index: dict[str, Obj] = {}
        self._seq: dict[str, int] = {}
        self._counter = itertools.count()
        self._idempotent: dict[str, _StoredResponse] = {}
        self._session_state: dict[str, Obj] = {}
        self._frozen_time: int | None = None
        self._invoice_numbers = itertools.count(1)
        self._request_context: Obj = {"id": None, "idempotency_key": None}
        # Invoices reach their payment through invoice.payments; this is the same link, kept handy.
        self._invoice_payment_intent: dict[str, str] = {}
        self._failures: list[Obj] = []
        self.legacy_fields = legacy_fields
        self.published: dict[str, Obj] = dict(published or {})
        # The hosted Checkout page (for browser tests): sessions get a URL on this server whose
        # "Pay" button completes the session, sends the signed webhook here, then redirects back.
        self.checkout_page = False
        self.webhook_url: str | None = None
        self.webhook_secret: str | None = None
        # Hooks of the payments sandbox (fakes/sandbox.py): pages of its own, answered before the
        # API (None: not one of them), and a call after each API request that changed something.
        self.pages: Callable[[str, str, bytes], tuple[int, bytes, dict[str, str]] | None] | None = None
        self.after_change: Callable[[], None] | None = None
        self.port = port

    # ---- the hosted Checkout page ----------------------------------------------------------------

    def _checkout_page(self, method: str, path: str) -> tuple[int, bytes, dict[str, str]]:
        session_id = path.removeprefix("/c/pay/").strip("/")
        with self._lock:
            session = self._index.get(session_id)
        if session is None or session.get("object") != "checkout.session":
            return 404, b"<h1>No such checkout session</h1>", {"Content-Type": "text/html"}
        if method == "GET":
            amount = f"{(session.get('amount_total') or 0) / 100:.2f} {str(session.get('currency') or '').upper()}"
            page = (
                "<!doctype html><title>Fake Stripe Checkout</title><h1>Fake Stripe Checkout</h1>"
                f"<p>Pay <strong>{amount}</strong> to Dream Pixel</p>"
                f'<form method="post" action="/c/pay/{session_id}"><button type="submit">Pay</button></form>'
            )
            return 200, page.encode(), {"Content-Type": "text/html; charset=utf-8"}
        event = self.complete_checkout(session_id)
        if self.webhook_url and self.webhook_secret:
            body, header = signed_event(event, self.webhook_secret)
            with contextlib.suppress(httpx.HTTPError):
                headers = {"Content-Type": "application/json", "Stripe-Signature": header}
                httpx.post(self.webhook_url, content=body, headers=headers, timeout=10)
        target = str(session.get("success_url") or "/").replace("{CHECKOUT_SESSION_ID}", session_id)
        return 303, b"", {"Location": target, "Content-Type": "text/html"}

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self) -> FakeStripe:
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.fake = self
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-stripe", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeStripe:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def client(self, api_key: str = "sk_test_fake", **kwargs: Any) -> stripe.StripeClient:
        """A real StripeClient aimed at this server; no retries, so a fake bug fails at once."""
        kwargs.setdefault("max_network_retries", 0)
        return stripe.StripeClient(api_key, base_addresses={"api": self.url}, **kwargs)

    # ---- clock ----------------------------------------------------------------------------------

    def now(self) -> int:
        return self._frozen_time if self._frozen_time is not None else int(time.time())

    def set_time(self, timestamp: int | None) -> None:
        """Freeze the fake's clock (``created``, periods) at ``timestamp``; None thaws it."""
        with self._lock:
            self._frozen_time = timestamp

    def advance_time(self, seconds: int) -> int:
        """Freeze the clock (at now if thawed) and move it forward; returns the new time."""
        with self._lock:
            self._frozen_time = self.now() + seconds
            return self._frozen_time

    # ---- inspection -----------------------------------------------------------------------------

    def get(self, object_id: str) -> Obj:
        """A snapshot of any stored object (customer, session, invoice, charge, event, ...)."""
        with self._lock:
            return self._render(self._require(None, object_id))

    def objects(self, object_name: str) -> list[Obj]:
        """Snapshots of every stored object of one kind (e.g. "checkout.session"), oldest first."""
        with self._lock:
            found = [obj for obj in self._index.values() if obj["object"] == object_name]
            return [self._render(obj) for obj in sorted(found, key=self._sort_key)]

    def find_requests(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method.upper()) and (path is None or r.path == path)
            ]

    def events_of_type(self, event_type: str) -> list[Obj]:
        with self._lock:
            return [copy.deepcopy(e) for e in self.events if e["type"] == event_type]

    # ---- seeding --------------------------------------------------------------------------------

    def add_price(
        self,
        price_id: str,
        unit_amount: int,
        currency: str = "usd",
        recurring: bool = False,
        *,
        interval: str = "month",
        product_name: str | None = None,
        lookup_key: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Obj:
        """Register a price (and its product) that checkout line items can reference."""
        with self._lock:
            if price_id in self._index:
                raise ValueError(f"FakeStripe already has an object {price_id!r}")
            product = self._new_product(product_name or price_id)
            price = self._new_price(
                price_id,
                unit_amount,
                currency.lower(),
                interval if recurring else None,
                product["id"],
                active=True,
                lookup_key=lookup_key,
                metadata=dict(metadata or {}),
            )
            return self._render(price)

    def add_customer(
        self, email: str | None = None, name: str | None = None, *, customer_id: str | None = None, **metadata: str
    ) -> Obj:
        """A customer made outside the code under test; `customer_id` keeps a known id (the
        payments sandbox brings back the customers the database remembers)."""
        with self._lock:
            return self._render(self._new_customer(email, name, dict(metadata), object_id=customer_id))

    # ---- failure injection ----------------------------------------------------------------------

    def fail_requests(self, method: str, path: str, *, status: int = 500, times: int = 1) -> None:
        """Answer the next ``times`` requests to ``method`` on ``path`` (a regex matched against the
        whole path) with a Stripe API error of ``status``, as if Stripe were having trouble.

        The answer carries ``Stripe-Should-Retry: false`` so the library raises at once instead of
        retrying, which keeps a test's outcome independent of the client's retry settings.
        """
        with self._lock:
            self._failures.append(
                {"method": method.upper(), "pattern": re.compile(path), "status": status, "remaining": times}
            )

    def _injected_failure(self, method: str, path: str) -> int | None:
        for failure in self._failures:
            if failure["remaining"] > 0 and failure["method"] == method and failure["pattern"].fullmatch(path):
                failure["remaining"] -= 1
                return failure["status"]
        return None

    # ---- state transitions (each returns the Event Stripe would send) ---------------------------

    def complete_checkout(self, session_id: str, paid: bool = True) -> Obj:
        """The buyer finishes Checkout. ``paid=False`` models a delayed method (bank debit):
        the session completes with payment_status "unpaid" until an async_payment_* call."""
        with self._lock:
            session = self._require("checkout.session", session_id)
            if session["status"] != "open":
                raise ValueError(f"Checkout session {session_id} is {session['status']}, not open")
            state = self._session_state[session_id]
            customer = self._index.get(session["customer"] or "")
            if customer is None and (session["mode"] == "subscription" or session["customer_creation"] == "always"):
                customer = self._new_customer(session["customer_email"] or "buyer@example.test", None, {})
                self._emit("customer.created", customer)
            email = (customer or {}).get("email") or session["customer_email"] or "buyer@example.test"
            session["customer_details"] = {
                "address": None,
                "email": email,
                "name": (customer or {}).get("name"),
                "phone": None,
                "tax_exempt": "none",
                "tax_ids": [],
            }
            session["customer"] = customer["id"] if customer else None
            payment_state = "succeeded" if paid else "processing"
            if session["mode"] == "payment":
                pi_data = state["payment_intent_data"]
                pi, charge = self._new_payment(
                    session["amount_total"],
                    session["currency"],
                    session["customer"],
                    payment_state,
                    # Stripe copies payment_intent_data.metadata, not the session's own metadata.
                    metadata=_metadata(pi_data.get("metadata"), "payment_intent_data[metadata]"),
                    description=pi_data.get("description"),
                )
                session["payment_intent"] = pi["id"]
                self._emit_payment_events(pi, charge)
            else:
                subscription, invoice = self._start_subscription(session, state, paid)
                session["subscription"] = subscription["id"]
                session["invoice"] = invoice["id"]
            session["status"] = "complete"
            session["payment_status"] = "paid" if paid else "unpaid"
            session["url"] = None  # Stripe only shows the URL while the session is open
            return self._emit("checkout.session.completed", session)

    def async_payment_succeeded(self, session_id: str) -> Obj:
        with self._lock:
            session = self._require_delayed_session(session_id)
            if session["mode"] == "payment":
                pi = self._index[session["payment_intent"]]
                self._settle_payment(pi, "succeeded")
            else:
                invoice = self._index[session["invoice"]]
                self._settle_invoice(invoice, "succeeded")
            session["payment_status"] = "paid"
            return self._emit("checkout.session.async_payment_succeeded", session)

    def async_payment_failed(self, session_id: str) -> Obj:
        with self._lock:
            session = self._require_delayed_session(session_id)
            if session["mode"] == "payment":
                self._settle_payment(self._index[session["payment_intent"]], "failed")
            else:
                self._settle_invoice(self._index[session["invoice"]], "failed")
            return self._emit("checkout.session.async_payment_failed", session)

    def expire_checkout(self, session_id: str) -> Obj:
        with self._lock:
            session = self._require("checkout.session", session_id)
            if session["status"] != "open":
                raise ValueError(f"Checkout session {session_id} is {session['status']}, not open")
            return self._expire(session)

    def pay_invoice(self, subscription_id: str) -> Obj:
        """A renewal: the next period's invoice is created and paid -> "invoice.paid"."""
        with self._lock:
            return self._renew(subscription_id, paid=True)

    def fail_invoice(self, subscription_id: str) -> Obj:
        """A renewal whose card is declined: subscription goes past_due -> "invoice.payment_failed"."""
        with self._lock:
            return self._renew(subscription_id, paid=False)

    def update_subscription(self, subscription_id: str, **fields: Any) -> Obj:
        """Set fields on a subscription -> "customer.subscription.updated" with previous_attributes.

        ``price=`` / ``quantity=`` change the first item; ``cancel_at_period_end=True`` also sets
        ``cancel_at`` to the period end, as Stripe does. Anything else is set verbatim.
        """
        with self._lock:
            subscription = self._require("subscription", subscription_id)
            return self._apply_subscription_update(subscription, fields)

    def cancel_subscription(self, subscription_id: str) -> Obj:
        with self._lock:
            subscription = self._require("subscription", subscription_id)
            if subscription["status"] == "canceled":
                raise ValueError(f"Subscription {subscription_id} is already canceled")
            return self._cancel(subscription, reason="cancellation_requested")

    def refund(self, charge_or_payment_intent: str, amount: int | None = None) -> tuple[Obj, Obj]:
        """Refund all (amount=None) or part of a charge -> ``("charge.refunded" event, refund)``."""
        with self._lock:
            charge = self._charge_for(charge_or_payment_intent)
            try:
                refund = self._new_refund(charge, amount, reason=None, metadata={})
            except _ApiError as error:
                raise ValueError(error.message) from None
            return self._emit_refund_events(charge, refund), self._render(refund)

    def dispute(self, charge_id: str, status: str = "needs_response", reason: str = "fraudulent") -> Obj:
        """The cardholder disputes a charge (charge or payment intent id) -> "charge.dispute.created"."""
        with self._lock:
            charge = self._charge_for(charge_id)
            dispute = self._new(
                "dp_",
                "dispute",
                amount=charge["amount"] - charge["amount_refunded"],
                balance_transactions=[],
                charge=charge["id"],
                currency=charge["currency"],
                evidence={"customer_email_address": None, "uncategorized_text": None},
                evidence_details={
                    "due_by": self.now() + 7 * 86_400,
                    "has_evidence": False,
                    "past_due": False,
                    "submission_count": 0,
                },
                is_charge_refundable=False,
                metadata={},
                payment_intent=charge["payment_intent"],
                reason=reason,
                status=status,
            )
            charge["disputed"] = True
            return self._emit("charge.dispute.created", dispute)

    def close_dispute(self, dispute_id: str, won: bool) -> Obj:
        with self._lock:
            dispute = self._require("dispute", dispute_id)
            previous = {"status": dispute["status"]}
            dispute["status"] = "won" if won else "lost"
            return self._emit("charge.dispute.closed", dispute, previous)

    # ---- HTTP -----------------------------------------------------------------------------------

    def _handle(
        self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        split = urlsplit(raw_path)
        path = split.path
        pairs = parse_qsl(split.query, keep_blank_values=True)
        if body:
            pairs += parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        lowered = {k.lower(): v for k, v in headers.items()}
        idempotency_key = lowered.get("idempotency-key") if method == "POST" else None
        request_id = "req_" + _random(14)
        response_headers = {"Request-Id": request_id, "Stripe-Version": lowered.get("stripe-version", API_VERSION)}
        with self._lock:
            record = RecordedRequest(method, path, {}, idempotency_key, dict(headers), 0, request_id)
            self.requests.append(record)
            try:
                record.params = parse_form(pairs)
            except ValueError as error:
                return self._finish(record, _ApiError(400, str(error)).body(), 400, response_headers)

            auth = lowered.get("authorization", "")
            if not auth.startswith("Bearer "):
                refusal = _ApiError(
                    401, "You did not provide an API key. Provide it as a Bearer token (Authorization header)."
                )
                return self._finish(record, refusal.body(), 401, response_headers)
            if not auth.removeprefix("Bearer ").startswith("sk_test_"):
                masked = auth.removeprefix("Bearer ")[:8] + "*" * 8
                refusal = _ApiError(401, f"Invalid API Key provided: {masked}")
                return self._finish(record, refusal.body(), 401, response_headers)

            failed_status = self._injected_failure(method, path)
            if failed_status is not None:
                refusal = _ApiError(failed_status, "FakeStripe: injected failure.", type="api_error")
                return self._finish(
                    record, refusal.body(), failed_status, {**response_headers, "Stripe-Should-Retry": "false"}
                )

            fingerprint = tuple(sorted(pairs))
            if idempotency_key:
                stored = self._idempotent.get(idempotency_key)
                if stored is not None and self.now() - stored.stored_at >= IDEMPOTENCY_KEY_SECONDS:
                    stored = None  # pruned, as Stripe does after 24 hours: the key is new again
                if stored is not None:
                    return self._replay(record, stored, (method, path), fingerprint, response_headers)

            self._request_context = {"id": request_id, "idempotency_key": idempotency_key}
            try:
                status, result = 200, self._route(method, path, record.params)
            except _ApiError as error:
                status, result = error.status, error.body()
            finally:
                self._request_context = {"id": None, "idempotency_key": None}
            payload = json.dumps(result).encode("utf-8")
            # Stripe saves a result once the endpoint ran; validation failures are not saved,
            # so a corrected retry with the same key can succeed. Only successes are saved here.
            if idempotency_key and status == 200:
                self._idempotent[idempotency_key] = _StoredResponse(
                    (method, path), fingerprint, status, payload, request_id, self.now()
                )
            record.status = status
            return status, payload, response_headers

    def _finish(
        self, record: RecordedRequest, body: Obj, status: int, headers: dict[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        record.status = status
        return status, json.dumps(body).encode("utf-8"), headers

    def _replay(
        self,
        record: RecordedRequest,
        stored: _StoredResponse,
        endpoint: tuple[str, str],
        fingerprint: tuple[tuple[str, str], ...],
        headers: dict[str, str],
    ) -> tuple[int, bytes, dict[str, str]]:
        key = record.idempotency_key
        if stored.endpoint != endpoint:
            message = (
                "Keys for idempotent requests can only be used for the same endpoint they were first "
                f"used for ('{stored.endpoint[0]} {stored.endpoint[1]}' vs '{endpoint[0]} {endpoint[1]}'). "
                f"Try using a key other than '{key}' if you meant to execute a different request."
            )
            return self._finish(record, _ApiError(400, message, type="idempotency_error").body(), 400, headers)
        if stored.fingerprint != fingerprint:
            message = (
                "Keys for idempotent requests can only be used with the same parameters they were first "
                f"used with. Try using a key other than '{key}' if you meant to execute a different request."
            )
            return self._finish(record, _ApiError(400, message, type="idempotency_error").body(), 400, headers)
        record.status = stored.status
        replay_headers = {**headers, "Idempotent-Replayed": "true", "Original-Request": stored.request_id}
        return stored.status, stored.body, replay_headers

    def _route(self, method: str, path: str, params: Obj) -> Obj:
        for route in _ROUTES:
            match = route.pattern.fullmatch(path) if route.method == method else None
            if match is None:
                continue
            for name in params:
                if route.allowed is not None and name not in route.allowed:
                    raise _ApiError(400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name)
                if name in route.unsupported:
                    raise _ApiError(400, f"FakeStripe does not implement `{name}` on {method} {path}.", param=name)
            ids = [unquote(group) for group in match.groups()]
            result = getattr(self, route.handler)(params, *ids)
            return self._expand(result, params.get("expand") or [])
        raise _ApiError(
            404,
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
            "or we can help at https://support.stripe.com/.",
        )

    # ---- storage --------------------------------------------------------------------------------

    def _new_id(self, prefix: str, length: int = 24) -> str:
        while True:
            candidate = prefix + _random(length)
            if candidate not in self._index:
                return candidate

    def _new(self, prefix: str, object_name: str, *, object_id: str | None = None, **fields: Any) -> Obj:
        obj: Obj = {
            "id": object_id or self._new_id(prefix),
            "object": object_name,
            "created": self.now(),
            **({} if object_name in _NO_LIVEMODE else {"livemode": False}),
            **fields,
        }
        self._index[obj["id"]] = obj
        self._seq[obj["id"]] = next(self._counter)
        return obj

    def _sort_key(self, obj: Obj) -> tuple[int, int]:
        return obj["created"], self._seq[obj["id"]]

    def _require(self, object_name: str | None, object_id: str) -> Obj:
        obj = self._index.get(object_id)
        if obj is None or (object_name is not None and obj["object"] != object_name):
            raise ValueError(f"FakeStripe has no {object_name or 'object'} {object_id!r}")
        return obj

    def _lookup(self, object_name: str, object_id: str, param: str, status: int = 404) -> Obj:
        # Retrieving a missing object is a 404; referencing one in create params is a 400.
        obj = self._index.get(object_id)
        if obj is None or obj["object"] != object_name:
            raise _ApiError(status, f"No such {object_name}: '{object_id}'", code="resource_missing", param=param)
        return obj

    def _render(self, obj: Obj) -> Obj:
        snapshot = copy.deepcopy(obj)
        if obj.get("object") in self.published:
            snapshot = _underlay(self.published[obj["object"]], snapshot)
        if not self.legacy_fields:
            _strip_legacy(snapshot)
        if obj["object"] == "charge":
            refunds = sorted(
                (o for o in self._index.values() if o["object"] == "refund" and o["charge"] == obj["id"]),
                key=self._sort_key,
                reverse=True,
            )
            snapshot["refunds"] = {
                "object": "list",
                "data": [copy.deepcopy(r) for r in refunds],
                "has_more": False,
                "url": f"/v1/charges/{obj['id']}/refunds",
            }
        return snapshot

    def _expand(self, result: Obj, paths: Any) -> Obj:
        if isinstance(paths, str):
            paths = [paths]
        for path in paths:
            self._expand_path(result, str(path).split("."))
        return result

    def _expand_path(self, node: Any, parts: list[str]) -> None:
        if isinstance(node, list):
            for item in node:
                self._expand_path(item, parts)
            return
        if not isinstance(node, dict) or not parts:
            return
        head, rest = parts[0], parts[1:]
        if head == "line_items" and node.get("object") == "checkout.session":
            # line_items is never in a session unless expanded, exactly like Stripe.
            node["line_items"] = self._line_item_list(node["id"], {})
        value = node.get(head)
        if isinstance(value, str) and value in self._index:
            value = node[head] = self._render(self._index[value])
        self._expand_path(value, rest)

    def _list(
        self,
        object_name: str,
        params: Obj,
        url: str,
        equal: Iterable[str] = (),
        keep: Callable[[Obj], bool] | None = None,
    ) -> Obj:
        limit = _int(params.get("limit", 10), "limit")
        if not 1 <= limit <= 100:
            raise _ApiError(400, f"This value must be between 1 and 100 (it currently is '{limit}').", param="limit")
        items = [o for o in self._index.values() if o["object"] == object_name]
        items = [o for o in items if _created_matches(o["created"], params.get("created"))]
        for name in equal:
            if name in params:
                items = [o for o in items if _as_wire(o.get(name)) == params[name]]
        if keep is not None:
            items = [o for o in items if keep(o)]
        items.sort(key=self._sort_key, reverse=True)  # newest first, as Stripe lists
        if params.get("starting_after"):
            cursor = self._lookup(object_name, params["starting_after"], "starting_after", 400)
            items = [o for o in items if self._sort_key(o) < self._sort_key(cursor)]
            page, has_more = items[:limit], len(items) > limit
        elif params.get("ending_before"):
            cursor = self._lookup(object_name, params["ending_before"], "ending_before", 400)
            items = [o for o in items if self._sort_key(o) > self._sort_key(cursor)]
            page, has_more = items[-limit:], len(items) > limit
        else:
            page, has_more = items[:limit], len(items) > limit
        return {"object": "list", "data": [self._render(o) for o in page], "has_more": has_more, "url": url}

    def _emit(self, event_type: str, obj: Obj, previous: Obj | None = None) -> Obj:
        data: Obj = {"object": self._render(obj)}
        if previous is not None:
            data["previous_attributes"] = copy.deepcopy(previous)
        event = self._new(
            "evt_",
            "event",
            api_version=API_VERSION,
            data=data,
            pending_webhooks=1,
            request=dict(self._request_context),
            type=event_type,
        )
        self.events.append(copy.deepcopy(event))
        return copy.deepcopy(event)

    # ---- object factories -----------------------------------------------------------------------

    def _new_customer(self, email: str | None, name: str | None, metadata: dict[str, str], **extra: Any) -> Obj:
        return self._new(
            "cus_",
            "customer",
            object_id=extra.get("object_id"),
            address=None,
            balance=0,
            currency=None,
            default_source=None,
            delinquent=False,
            description=extra.get("description"),
            discount=None,
            email=email,
            invoice_prefix=_random(8).upper(),
            invoice_settings={
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            metadata=metadata,
            name=name,
            phone=extra.get("phone"),
            preferred_locales=[],
            shipping=None,
            tax_exempt="none",
            test_clock=None,
        )

    def _new_product(self, name: str) -> Obj:
        return self._new(
            "prod_",
            "product",
            active=True,
            default_price=None,
            description=None,
            images=[],
            metadata={},
            name=name,
            type="service",
            updated=self.now(),
            url=None,
        )

    def _new_price(
        self,
        price_id: str | None,
        unit_amount: int,
        currency: str,
        interval: str | None,
        product_id: str,
        *,
        active: bool,
        lookup_key: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Obj:
        if interval is not None and interval not in _INTERVAL_SECONDS:
            raise ValueError(f"Unknown interval {interval!r}")
        recurring = (
            None
            if interval is None
            else {
                "interval": interval,
                "interval_count": 1,
                "meter": None,
                "trial_period_days": None,
                "usage_type": "licensed",
            }
        )
        return self._new(
            "price_",
            "price",
            object_id=price_id,
            active=active,
            billing_scheme="per_unit",
            currency=currency,
            custom_unit_amount=None,
            lookup_key=lookup_key,
            metadata=metadata or {},
            nickname=None,
            product=product_id,
            recurring=recurring,
            tax_behavior="unspecified",
            tiers_mode=None,
            transform_quantity=None,
            type="one_time" if interval is None else "recurring",
            unit_amount=unit_amount,
            unit_amount_decimal=str(unit_amount),
        )

    def _new_payment(
        self,
        amount: int,
        currency: str,
        customer: str | None,
        state: str,
        *,
        metadata: dict[str, str],
        description: str | None,
    ) -> tuple[Obj, Obj]:
        """A PaymentIntent and its charge. ``state``: succeeded | processing | failed."""
        payment_method = self._new_id("pm_")
        pi = self._new(
            "pi_",
            "payment_intent",
            amount=amount,
            amount_capturable=0,
            amount_received=0,
            capture_method="automatic_async",
            client_secret=None,
            confirmation_method="automatic",
            currency=currency,
            customer=customer,
            description=description,
            last_payment_error=None,
            latest_charge=None,
            metadata=metadata,
            payment_method=payment_method,
            payment_method_types=["card"],
            status="processing",
        )
        pi["client_secret"] = f"{pi['id']}_secret_{_random(24)}"
        charge = self._new(
            "ch_",
            "charge",
            amount=amount,
            amount_captured=0,
            amount_refunded=0,
            balance_transaction=None,
            billing_details={"address": None, "email": None, "name": None, "phone": None},
            captured=False,
            currency=currency,
            customer=customer,
            description=description,
            disputed=False,
            failure_code=None,
            failure_message=None,
            metadata=metadata,
            outcome=None,
            paid=False,
            payment_intent=pi["id"],
            payment_method=payment_method,
            payment_method_details={"type": "card", "card": {"brand": "visa", "last4": "4242"}},
            receipt_url=None,
            refunded=False,
            status="pending",
        )
        pi["latest_charge"] = charge["id"]
        self._set_payment_state(pi, charge, state)
        return pi, charge

    def _set_payment_state(self, pi: Obj, charge: Obj, state: str) -> None:
        if state == "succeeded":
            pi.update(status="succeeded", amount_received=pi["amount"], last_payment_error=None)
            charge.update(
                status="succeeded",
                paid=True,
                captured=True,
                amount_captured=charge["amount"],
                balance_transaction=self._new_id("txn_"),
                outcome={"network_status": "approved_by_network", "type": "authorized", "seller_message": ""},
                receipt_url=f"https://pay.stripe.test/receipts/{charge['id']}",
            )
        elif state == "processing":
            pi.update(status="processing")
            charge.update(status="pending", paid=False)
        elif state == "failed":
            # What a declined card or a bounced bank debit looks like on the two objects.
            error = {"code": "card_declined", "message": "Your card was declined.", "type": "card_error"}
            pi.update(status="requires_payment_method", last_payment_error=error)
            charge.update(status="failed", paid=False, failure_code="card_declined", failure_message=error["message"])
        else:
            raise ValueError(f"Unknown payment state {state!r}")

    def _emit_payment_events(self, pi: Obj, charge: Obj) -> None:
        if pi["status"] == "succeeded":
            self._emit("charge.succeeded", charge)
            self._emit("payment_intent.succeeded", pi)
        elif pi["status"] == "processing":
            self._emit("charge.pending", charge)
            self._emit("payment_intent.processing", pi)
        else:
            self._emit("charge.failed", charge)
            self._emit("payment_intent.payment_failed", pi)

    def _settle_payment(self, pi: Obj, state: str) -> None:
        charge = self._index[pi["latest_charge"]]
        self._set_payment_state(pi, charge, state)
        self._emit_payment_events(pi, charge)

    def _charge_for(self, charge_or_payment_intent: str) -> Obj:
        obj = self._require(None, charge_or_payment_intent)
        if obj["object"] == "payment_intent":
            if not obj["latest_charge"]:
                raise ValueError(f"Payment intent {obj['id']} has no charge")
            obj = self._index[obj["latest_charge"]]
        if obj["object"] != "charge":
            raise ValueError(f"{charge_or_payment_intent!r} is a {obj['object']}, not a charge or payment intent")
        return obj

    def _new_refund(self, charge: Obj, amount: int | None, *, reason: str | None, metadata: dict[str, str]) -> Obj:
        remaining = charge["amount_captured"] - charge["amount_refunded"]
        if not charge["paid"]:
            raise _ApiError(400, f"Charge {charge['id']} has not succeeded and cannot be refunded.")
        if remaining <= 0:
            raise _ApiError(400, f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded")
        amount = remaining if amount is None else amount
        if amount <= 0:
            raise _ApiError(400, "Refund amount must be positive.", code="parameter_invalid_integer", param="amount")
        if amount > remaining:
            raise _ApiError(
                400,
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})",
                code="amount_too_large",
                param="amount",
            )
        refund = self._new(
            "re_",
            "refund",
            amount=amount,
            balance_transaction=self._new_id("txn_"),
            charge=charge["id"],
            currency=charge["currency"],
            destination_details={"type": "card", "card": {"type": "refund"}},
            metadata=metadata,
            payment_intent=charge["payment_intent"],
            reason=reason,
            receipt_number=None,
            status="succeeded",
        )
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
        return refund

    def _emit_refund_events(self, charge: Obj, refund: Obj) -> Obj:
        self._emit("refund.created", refund)
        previous = {
            "amount_refunded": charge["amount_refunded"] - refund["amount"],
            "refunded": False,
        }
        return self._emit("charge.refunded", charge, previous)

    # ---- subscriptions & invoices ---------------------------------------------------------------

    def _start_subscription(self, session: Obj, state: Obj, paid: bool) -> tuple[Obj, Obj]:
        recurring = [li for li in state["line_items"] if li["price"]["recurring"]]
        one_time = [li for li in state["line_items"] if not li["price"]["recurring"]]
        interval = recurring[0]["price"]["recurring"]["interval"]
        start = self.now()
        end = start + _INTERVAL_SECONDS[interval]
        sub_data = state["subscription_data"]
        subscription = self._new(
            "sub_",
            "subscription",
            application=None,
            billing_cycle_anchor=start,
            cancel_at=None,
            cancel_at_period_end=False,
            canceled_at=None,
            cancellation_details={"comment": None, "feedback": None, "reason": None},
            collection_method="charge_automatically",
            currency=session["currency"],
            current_period_end=end,  # legacy: newer API versions only have it on items
            current_period_start=start,  # legacy
            customer=session["customer"],
            days_until_due=None,
            default_payment_method=self._new_id("pm_"),
            description=sub_data.get("description"),
            discounts=[],
            ended_at=None,
            items=None,
            latest_invoice=None,
            metadata=_metadata(sub_data.get("metadata"), "subscription_data[metadata]"),
            pending_update=None,
            start_date=start,
            status="incomplete",
            trial_end=None,
            trial_start=None,
        )
        items = [
            self._new(
                "si_",
                "subscription_item",
                current_period_end=end,
                current_period_start=start,
                discounts=[],
                metadata={},
                price=copy.deepcopy(li["price"]),
                quantity=li["quantity"],
                subscription=subscription["id"],
                tax_rates=[],
            )
            for li in recurring
        ]
        subscription["items"] = {
            "object": "list",
            "data": items,
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={subscription['id']}",
        }
        lines = [(item["price"], item["quantity"], item["id"], start, end) for item in items]
        # One-time prices in subscription mode are charged once, on the first invoice only.
        lines += [(li["price"], li["quantity"], None, start, end) for li in one_time]
        invoice = self._new_invoice(subscription, "subscription_create", lines, start, start)
        self._emit("customer.subscription.created", subscription)
        self._emit("invoice.created", invoice)
        self._emit("invoice.finalized", invoice)
        self._settle_invoice(invoice, "succeeded" if paid else "processing")
        return subscription, invoice

    def _new_invoice(
        self,
        subscription: Obj,
        billing_reason: str,
        lines: list[tuple[Obj, int, str | None, int, int]],
        period_start: int,
        period_end: int,
    ) -> Obj:
        """An open, finalized invoice. Its period_* follow Stripe's quirk (the creation invoice has
        start == end; a renewal's is the period that just ended): read service periods from lines."""
        customer = self._index.get(subscription["customer"]) or {}
        invoice_id = self._new_id("in_")
        line_objects = []
        for price, quantity, item_id, start, end in lines:
            product = self._index.get(price["product"]) or {"name": price["product"]}
            line_objects.append(
                {
                    "id": self._new_id("il_"),
                    "object": "line_item",
                    "amount": price["unit_amount"] * quantity,
                    "currency": price["currency"],
                    "description": f"{quantity} \N{MULTIPLICATION SIGN} {product['name']}",
                    "discount_amounts": [],
                    "discountable": True,
                    "discounts": [],
                    "invoice": invoice_id,
                    "livemode": False,
                    "metadata": {},
                    "parent": {
                        "type": "subscription_item_details",
                        "invoice_item_details": None,
                        "subscription_item_details": {
                            "invoice_item": None,
                            "proration": False,
                            "proration_details": {"credited_items": None},
                            "subscription": subscription["id"],
                            "subscription_item": item_id,
                        },
                    },
                    "period": {"start": start, "end": end},
                    "pricing": {
                        "type": "price_details",
                        "price_details": {"price": price["id"], "product": price["product"]},
                        "unit_amount_decimal": price["unit_amount_decimal"],
                    },
                    "price": copy.deepcopy(price),  # legacy
                    "quantity": quantity,
                    "subscription": subscription["id"],  # legacy
                }
            )
        total = sum(line["amount"] for line in line_objects)
        now = self.now()
        invoice = self._new(
            "in_",
            "invoice",
            object_id=invoice_id,
            account_country="US",
            account_name="Dream Pixel (FakeStripe)",
            amount_due=total,
            amount_paid=0,
            amount_remaining=total,
            amount_shipping=0,
            attempt_count=0,
            attempted=False,
            auto_advance=True,
            billing_reason=billing_reason,
            collection_method="charge_automatically",
            currency=subscription["currency"],
            customer=subscription["customer"],
            customer_email=customer.get("email"),
            customer_name=customer.get("name"),
            default_payment_method=None,
            description=None,
            discounts=[],
            due_date=None,
            effective_at=now,
            ending_balance=0,
            hosted_invoice_url=f"https://invoice.stripe.test/i/{invoice_id}",
            invoice_pdf=f"https://invoice.stripe.test/i/{invoice_id}/pdf",
            lines={
                "object": "list",
                "data": line_objects,
                "has_more": False,
                "url": f"/v1/invoices/{invoice_id}/lines",
            },
            metadata={},
            next_payment_attempt=None,
            number=f"FAKE-{next(self._invoice_numbers):04d}",
            paid=False,  # legacy
            parent={
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {
                    "metadata": copy.deepcopy(subscription["metadata"]),
                    "subscription": subscription["id"],
                },
            },
            payments={"object": "list", "data": [], "has_more": False, "url": "/v1/invoice_payments"},
            period_end=period_end,
            period_start=period_start,
            starting_balance=0,
            status="open",
            status_transitions={
                "finalized_at": now,
                "marked_uncollectible_at": None,
                "paid_at": None,
                "voided_at": None,
            },
            subscription=subscription["id"],  # legacy
            subtotal=total,
            subtotal_excluding_tax=total,
            total=total,
            total_excluding_tax=total,
            webhooks_delivered_at=now,
        )
        subscription["latest_invoice"] = invoice["id"]
        return invoice

    def _settle_invoice(self, invoice: Obj, state: str) -> None:
        """Charge an invoice: succeeded -> paid (and subscription active); processing -> still open;
        failed -> open with a failed attempt (subscription past_due, or incomplete if first)."""
        subscription = self._index[invoice["parent"]["subscription_details"]["subscription"]]
        pi = self._index.get(self._invoice_payment_intent.get(invoice["id"], ""))
        if pi is None:
            description = "Subscription creation" if invoice["billing_reason"] == "subscription_create" else None
            pi, charge = self._new_payment(
                invoice["amount_due"],
                invoice["currency"],
                invoice["customer"],
                state,
                metadata={},
                description=description or "Subscription update",
            )
            self._invoice_payment_intent[invoice["id"]] = pi["id"]
            invoice.update(attempted=True, attempt_count=1)
            invoice["payments"]["data"].append(
                {
                    "id": self._new_id("inpay_"),
                    "object": "invoice_payment",
                    "amount_paid": None,
                    "amount_requested": invoice["amount_due"],
                    "created": self.now(),
                    "currency": invoice["currency"],
                    "invoice": invoice["id"],
                    "is_default": True,
                    "livemode": False,
                    "payment": {"type": "payment_intent", "payment_intent": pi["id"]},
                    "status": "open",
                    "status_transitions": {"canceled_at": None, "paid_at": None},
                }
            )
        else:
            charge = self._index[pi["latest_charge"]]
            self._set_payment_state(pi, charge, state)
        self._emit_payment_events(pi, charge)
        payment = invoice["payments"]["data"][0]
        if state == "succeeded":
            now = self.now()
            invoice.update(status="paid", paid=True, amount_paid=invoice["amount_due"], amount_remaining=0)
            invoice["status_transitions"]["paid_at"] = now
            payment.update(status="paid", amount_paid=invoice["amount_due"])
            payment["status_transitions"]["paid_at"] = now
            previous_status = subscription["status"]
            subscription["status"] = "active"
            self._emit("invoice.paid", invoice)
            self._emit("invoice.payment_succeeded", invoice)
            if previous_status != "active":
                self._emit("customer.subscription.updated", subscription, {"status": previous_status})
        elif state == "failed":
            payment["status"] = "failed"
            self._emit("invoice.payment_failed", invoice)
            if subscription["status"] == "active":
                subscription["status"] = "past_due"
                self._emit("customer.subscription.updated", subscription, {"status": "active"})

    def _renew(self, subscription_id: str, paid: bool) -> Obj:
        subscription = self._require("subscription", subscription_id)
        if subscription["status"] in ("canceled", "incomplete", "incomplete_expired"):
            raise ValueError(f"Subscription {subscription_id} is {subscription['status']}; it does not renew")
        items = subscription["items"]["data"]
        old_start, old_end = items[0]["current_period_start"], items[0]["current_period_end"]
        new_end = old_end + _INTERVAL_SECONDS[items[0]["price"]["recurring"]["interval"]]
        previous = {"current_period_start": old_start, "current_period_end": old_end}
        for item in items:
            item.update(current_period_start=old_end, current_period_end=new_end)
        subscription.update(current_period_start=old_end, current_period_end=new_end)
        self._emit("customer.subscription.updated", subscription, previous)
        lines = [(item["price"], item["quantity"], item["id"], old_end, new_end) for item in items]
        invoice = self._new_invoice(subscription, "subscription_cycle", lines, old_start, old_end)
        self._emit("invoice.created", invoice)
        self._emit("invoice.finalized", invoice)
        self._settle_invoice(invoice, "succeeded" if paid else "failed")
        wanted = "invoice.paid" if paid else "invoice.payment_failed"
        # Return the event already recorded rather than a second copy with a new id.
        return copy.deepcopy(next(e for e in reversed(self.events) if e["type"] == wanted))

    def _apply_subscription_update(self, subscription: Obj, fields: Mapping[str, Any]) -> Obj:
        previous: Obj = {}
        fields = dict(fields)
        first_item = subscription["items"]["data"][0]
        if "price" in fields or "quantity" in fields:
            previous["items"] = copy.deepcopy(subscription["items"])
            if "price" in fields:
                first_item["price"] = copy.deepcopy(self._require("price", fields.pop("price")))
            if "quantity" in fields:
                first_item["quantity"] = int(fields.pop("quantity"))
        if fields.get("cancel_at_period_end") is True and "cancel_at" not in fields:
            fields["cancel_at"] = first_item["current_period_end"]
        elif fields.get("cancel_at_period_end") is False and "cancel_at" not in fields:
            fields["cancel_at"] = None
        for name, value in fields.items():
            if subscription.get(name) != value:
                previous[name] = copy.deepcopy(subscription.get(name))
                subscription[name] = value
        return self._emit("customer.subscription.updated", subscription, previous)

    def _cancel(self, subscription: Obj, reason: str, comment: str | None = None, feedback: str | None = None) -> Obj:
        now = self.now()
        subscription.update(
            status="canceled",
            canceled_at=now,
            ended_at=now,
            cancel_at_period_end=False,
            cancellation_details={"comment": comment, "feedback": feedback, "reason": reason},
        )
        return self._emit("customer.subscription.deleted", subscription)

    # ---- checkout -------------------------------------------------------------------------------

    def _require_delayed_session(self, session_id: str) -> Obj:
        session = self._require("checkout.session", session_id)
        if session["status"] != "complete" or session["payment_status"] != "unpaid":
            raise ValueError(f"Checkout session {session_id} is not a completed session awaiting payment")
        return session

    def _expire(self, session: Obj) -> Obj:
        session.update(status="expired", url=None)
        return self._emit("checkout.session.expired", session)

    def _session_line_items(self, params: Obj, session_id: str) -> Obj:
        self._lookup("checkout.session", session_id, "session")
        return self._line_item_list(session_id, params)

    def _line_item_list(self, session_id: str, params: Obj) -> Obj:
        items = self._session_state[session_id]["line_items"]
        limit = _int(params.get("limit", 10), "limit")
        if params.get("starting_after"):
            ids = [li["id"] for li in items]
            if params["starting_after"] in ids:
                items = items[ids.index(params["starting_after"]) + 1 :]
        return {
            "object": "list",
            "data": copy.deepcopy(items[:limit]),
            "has_more": len(items) > limit,
            "url": f"/v1/checkout/sessions/{session_id}/line_items",
        }

    def _build_line_item(self, raw: Any, index: int, currency_hint: str | None) -> Obj:
        prefix = f"line_items[{index}]"
        if not isinstance(raw, dict):
            raise _ApiError(400, f"Invalid object for {prefix}", code="parameter_invalid_object", param=prefix)
        if "quantity" not in raw:
            raise _ApiError(
                400,
                f"Quantity is required. Add `quantity` to `{prefix}`.",
                code="parameter_missing",
                param=f"{prefix}[quantity]",
            )
        quantity = _int(raw["quantity"], f"{prefix}[quantity]")
        if quantity < 1:
            raise _ApiError(400, "Quantity must be at least 1.", param=f"{prefix}[quantity]")
        if raw.get("price"):
            price = self._lookup("price", raw["price"], f"{prefix}[price]", status=400)
            if not price["active"]:
                raise _ApiError(400, f"The price `{price['id']}` is not active.", param=f"{prefix}[price]")
        elif isinstance(raw.get("price_data"), dict):
            price = self._price_from_data(raw["price_data"], f"{prefix}[price_data]")
        else:
            raise _ApiError(
                400,
                f"You must specify either `price` or `price_data` in `{prefix}`.",
                code="parameter_missing",
                param=f"{prefix}[price]",
            )
        if currency_hint is not None and price["currency"] != currency_hint:
            raise _ApiError(400, "All line items must use prices in the same currency.", param=f"{prefix}[price]")
        amount = price["unit_amount"] * quantity
        product = self._index.get(price["product"]) or {"name": price["product"]}
        return {
            "id": self._new_id("li_"),
            "object": "item",
            "amount_discount": 0,
            "amount_subtotal": amount,
            "amount_tax": 0,
            "amount_total": amount,
            "currency": price["currency"],
            "description": product["name"],
            "price": self._render(price),
            "quantity": quantity,
        }

    def _price_from_data(self, data: Obj, param: str) -> Obj:
        if "currency" not in data:
            raise _missing(f"{param}[currency]")
        if "unit_amount" not in data:
            raise _missing(f"{param}[unit_amount]")
        if data.get("product"):
            product_id = self._lookup("product", data["product"], f"{param}[product]", status=400)["id"]
        elif isinstance(data.get("product_data"), dict) and data["product_data"].get("name"):
            product_id = self._new_product(data["product_data"]["name"])["id"]
        else:
            raise _missing(f"{param}[product_data][name]")
        recurring = data.get("recurring")
        interval = recurring.get("interval") if isinstance(recurring, dict) else None
        if recurring is not None and interval not in _INTERVAL_SECONDS:
            raise _missing(f"{param}[recurring][interval]")
        # Stripe makes a hidden, inactive price for inline price_data.
        return self._new_price(
            None,
            _int(data["unit_amount"], f"{param}[unit_amount]"),
            str(data["currency"]).lower(),
            interval,
            product_id,
            active=False,
        )

    # ---- handlers: customers --------------------------------------------------------------------

    def _create_customer(self, params: Obj) -> Obj:
        customer = self._new_customer(
            params.get("email"),
            params.get("name"),
            _metadata(params.get("metadata")),
            description=params.get("description"),
            phone=params.get("phone"),
        )
        self._emit("customer.created", customer)
        return self._render(customer)

    def _list_customers(self, params: Obj) -> Obj:
        return self._list("customer", params, "/v1/customers", equal=("email",))

    def _retrieve_customer(self, params: Obj, customer_id: str) -> Obj:
        return self._render(self._lookup("customer", customer_id, "id"))

    def _update_customer(self, params: Obj, customer_id: str) -> Obj:
        customer = self._lookup("customer", customer_id, "id")
        previous: Obj = {}
        for name in ("email", "name", "description", "phone"):
            if name in params and customer.get(name) != (params[name] or None):
                previous[name] = customer.get(name)
                customer[name] = params[name] or None  # "" unsets, as in Stripe
        if "metadata" in params:
            previous["metadata"] = copy.deepcopy(customer["metadata"])
            _merge_metadata(customer["metadata"], params["metadata"])
        if previous:
            self._emit("customer.updated", customer, previous)
        return self._render(customer)

    # ---- handlers: checkout & portal ------------------------------------------------------------

    def _create_session(self, params: Obj) -> Obj:
        mode = params.get("mode")
        if not mode:
            raise _missing("mode")
        if mode not in ("payment", "subscription"):
            raise _ApiError(400, f"FakeStripe does not implement mode={mode}.", param="mode")
        raw_items = params.get("line_items")
        if not raw_items:
            raise _missing("line_items")
        if not isinstance(raw_items, list):
            raise _ApiError(400, "Invalid array", code="parameter_invalid_array", param="line_items")
        customer_id = params.get("customer") or None
        if customer_id:
            self._lookup("customer", customer_id, "customer", status=400)
            if params.get("customer_email"):
                raise _ApiError(
                    400,
                    "You may only specify one of these parameters: customer, customer_email.",
                    param="customer_email",
                )
        line_items: list[Obj] = []
        for index, raw in enumerate(raw_items):
            hint = line_items[0]["currency"] if line_items else None
            line_items.append(self._build_line_item(raw, index, hint))
        has_recurring = any(li["price"]["recurring"] for li in line_items)
        if mode == "payment" and has_recurring:
            raise _ApiError(
                400,
                "You specified `payment` mode but passed a recurring price. Either switch to "
                "`subscription` mode or use only one-time prices.",
                param="line_items",
            )
        if mode == "subscription" and not has_recurring:
            raise _ApiError(
                400,
                "You must provide at least one recurring price in `subscription` mode when using prices.",
                param="line_items",
            )
        customer_creation = params.get("customer_creation")
        if mode == "payment" and not customer_id and customer_creation is None:
            customer_creation = "if_required"
        ui_mode = params.get("ui_mode", "hosted")
        total = sum(li["amount_total"] for li in line_items)
        now = self.now()
        session = self._new(
            "cs_test_",
            "checkout.session",
            object_id=self._new_id("cs_test_", 58),
            after_expiration=None,
            allow_promotion_codes=params.get("allow_promotion_codes"),
            amount_subtotal=total,
            amount_total=total,
            automatic_tax={"enabled": False, "liability": None, "status": None},
            billing_address_collection=params.get("billing_address_collection"),
            cancel_url=params.get("cancel_url"),
            client_reference_id=params.get("client_reference_id"),
            client_secret=None,
            consent=None,
            currency=line_items[0]["currency"],
            custom_fields=[],
            customer=customer_id,
            customer_creation=customer_creation,
            customer_details=None,
            customer_email=params.get("customer_email"),
            expires_at=_int(params.get("expires_at", now + 86_400), "expires_at"),
            invoice=None,
            locale=params.get("locale"),
            metadata=_metadata(params.get("metadata")),
            mode=mode,
            payment_intent=None,  # created when the buyer pays, as in current API versions
            payment_link=None,
            payment_method_types=["card"],
            payment_status="unpaid",
            return_url=params.get("return_url"),
            status="open",
            submit_type=params.get("submit_type"),
            subscription=None,
            success_url=params.get("success_url"),
            total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            ui_mode=ui_mode,
            url=None,
        )
        if ui_mode == "hosted":
            base = self.url if self.checkout_page else "https://checkout.stripe.test"
            session["url"] = f"{base}/c/pay/{session['id']}"
        else:
            session["client_secret"] = f"{session['id']}_secret_{_random(24)}"
        self._session_state[session["id"]] = {
            "line_items": line_items,
            "payment_intent_data": params.get("payment_intent_data") or {},
            "subscription_data": params.get("subscription_data") or {},
        }
        return self._render(session)

    def _list_sessions(self, params: Obj) -> Obj:
        email = (params.get("customer_details") or {}).get("email")
        return self._list(
            "checkout.session",
            params,
            "/v1/checkout/sessions",
            equal=("status", "customer", "payment_intent", "subscription"),
            keep=lambda s: email is None or (s["customer_details"] or {}).get("email") == email,
        )

    def _retrieve_session(self, params: Obj, session_id: str) -> Obj:
        return self._render(self._lookup("checkout.session", session_id, "session"))

    def _expire_session(self, params: Obj, session_id: str) -> Obj:
        session = self._lookup("checkout.session", session_id, "session")
        if session["status"] != "open":
            raise _ApiError(
                400,
                f'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout '
                f"Session has a status of `{session['status']}`.",
            )
        self._expire(session)
        return self._render(session)

    def _create_portal_session(self, params: Obj) -> Obj:
        if not params.get("customer"):
            raise _missing("customer")
        customer = self._lookup("customer", params["customer"], "customer", status=400)
        portal = self._new(
            "bps_",
            "billing_portal.session",
            configuration=params.get("configuration") or "bpc_fakedefault",
            customer=customer["id"],
            flow=None,
            locale=params.get("locale"),
            on_behalf_of=None,
            return_url=params.get("return_url"),
            url=None,
        )
        base = self.url if self.checkout_page else "https://billing.stripe.test"
        portal["url"] = f"{base}/p/session/{portal['id']}"
        return self._render(portal)

    # ---- handlers: catalogue, billing, payments -------------------------------------------------

    def _list_prices(self, params: Obj) -> Obj:
        lookup_keys = params.get("lookup_keys")
        return self._list(
            "price",
            params,
            "/v1/prices",
            equal=("active", "currency", "product", "type"),
            keep=lambda p: not lookup_keys or p["lookup_key"] in lookup_keys,
        )

    def _retrieve_price(self, params: Obj, price_id: str) -> Obj:
        return self._render(self._lookup("price", price_id, "price"))

    def _retrieve_product(self, params: Obj, product_id: str) -> Obj:
        return self._render(self._lookup("product", product_id, "id"))

    def _list_invoices(self, params: Obj) -> Obj:
        return self._list("invoice", params, "/v1/invoices", equal=("status", "customer", "subscription"))

    def _retrieve_invoice(self, params: Obj, invoice_id: str) -> Obj:
        return self._render(self._lookup("invoice", invoice_id, "invoice"))

    def _list_invoice_payments(self, params: Obj) -> Obj:
        # Invoice payments live inside their invoice (invoice.payments); list them across invoices.
        payment = params.get("payment") or {}
        if not isinstance(payment, dict):
            raise _ApiError(400, "Invalid object for payment", code="parameter_invalid_object", param="payment")
        limit = _int(params.get("limit", 10), "limit")
        invoices = sorted(
            (o for o in self._index.values() if o["object"] == "invoice"), key=self._sort_key, reverse=True
        )
        found = [
            copy.deepcopy(item)
            for invoice in invoices
            if not params.get("invoice") or invoice["id"] == params["invoice"]
            for item in invoice["payments"]["data"]
            if (not payment.get("type") or item["payment"]["type"] == payment["type"])
            and (
                not payment.get("payment_intent") or item["payment"].get("payment_intent") == payment["payment_intent"]
            )
            and (not params.get("status") or item["status"] == params["status"])
        ]
        return {"object": "list", "data": found[:limit], "has_more": len(found) > limit, "url": "/v1/invoice_payments"}

    def _list_subscriptions(self, params: Obj) -> Obj:
        status = params.get("status")

        # Stripe hides canceled subscriptions unless asked for them ("all" or "canceled").
        def keep(sub: Obj) -> bool:
            if status in (None, ""):
                return sub["status"] != "canceled"
            return status == "all" or sub["status"] == status

        filters = {k: v for k, v in params.items() if k != "status"}
        return self._list("subscription", filters, "/v1/subscriptions", equal=("customer",), keep=keep)

    def _retrieve_subscription(self, params: Obj, subscription_id: str) -> Obj:
        return self._render(self._lookup("subscription", subscription_id, "subscription_exposed_id"))

    def _update_subscription_api(self, params: Obj, subscription_id: str) -> Obj:
        subscription = self._lookup("subscription", subscription_id, "subscription_exposed_id")
        if subscription["status"] == "canceled":
            raise _ApiError(
                400,
                "A canceled subscription can only update its cancellation_details and metadata.",
            )
        fields: Obj = {}
        if "cancel_at_period_end" in params:
            fields["cancel_at_period_end"] = _bool(params["cancel_at_period_end"], "cancel_at_period_end")
        if "cancel_at" in params:
            fields["cancel_at"] = _int(params["cancel_at"], "cancel_at") if params["cancel_at"] else None
        if "description" in params:
            fields["description"] = params["description"] or None
        if "metadata" in params:
            merged = copy.deepcopy(subscription["metadata"])
            _merge_metadata(merged, params["metadata"])
            fields["metadata"] = merged
        self._apply_subscription_update(subscription, fields)
        return self._render(subscription)

    def _cancel_subscription_api(self, params: Obj, subscription_id: str) -> Obj:
        subscription = self._lookup("subscription", subscription_id, "subscription_exposed_id")
        if subscription["status"] == "canceled":
            raise _ApiError(
                404,
                f"No such subscription: '{subscription_id}'",
                code="resource_missing",
                param="subscription_exposed_id",
            )
        details = params.get("cancellation_details") or {}
        self._cancel(
            subscription,
            reason="cancellation_requested",
            comment=details.get("comment") or None,
            feedback=details.get("feedback") or None,
        )
        return self._render(subscription)

    def _list_payment_intents(self, params: Obj) -> Obj:
        return self._list("payment_intent", params, "/v1/payment_intents", equal=("customer",))

    def _retrieve_payment_intent(self, params: Obj, pi_id: str) -> Obj:
        return self._render(self._lookup("payment_intent", pi_id, "intent"))

    def _list_charges(self, params: Obj) -> Obj:
        return self._list("charge", params, "/v1/charges", equal=("customer", "payment_intent"))

    def _retrieve_charge(self, params: Obj, charge_id: str) -> Obj:
        return self._render(self._lookup("charge", charge_id, "charge"))

    def _create_refund_api(self, params: Obj) -> Obj:
        if params.get("charge"):
            charge = self._lookup("charge", params["charge"], "charge", status=400)
        elif params.get("payment_intent"):
            pi = self._lookup("payment_intent", params["payment_intent"], "payment_intent", status=400)
            if not pi["latest_charge"]:
                raise _ApiError(400, f"PaymentIntent {pi['id']} has no charge to refund.", param="payment_intent")
            charge = self._index[pi["latest_charge"]]
        else:
            raise _ApiError(
                400, "One of the following params should be provided for this request: charge or payment_intent."
            )
        amount = _int(params["amount"], "amount") if "amount" in params else None
        refund = self._new_refund(
            charge, amount, reason=params.get("reason") or None, metadata=_metadata(params.get("metadata"))
        )
        self._emit_refund_events(charge, refund)
        return self._render(refund)

    def _list_refunds(self, params: Obj) -> Obj:
        return self._list("refund", params, "/v1/refunds", equal=("charge", "payment_intent"))

    def _retrieve_refund(self, params: Obj, refund_id: str) -> Obj:
        return self._render(self._lookup("refund", refund_id, "refund"))

    def _list_disputes(self, params: Obj) -> Obj:
        return self._list("dispute", params, "/v1/disputes", equal=("charge", "payment_intent"))

    def _retrieve_dispute(self, params: Obj, dispute_id: str) -> Obj:
        return self._render(self._lookup("dispute", dispute_id, "dispute"))

    def _list_events(self, params: Obj) -> Obj:
        types = params.get("types")
        return self._list(
            "event", params, "/v1/events", equal=("type",), keep=lambda e: not types or e["type"] in types
        )

    def _retrieve_event(self, params: Obj, event_id: str) -> Obj:
        return self._render(self._lookup("event", event_id, "id"))


# --------------------------------------------------------------------------------------------------
# Small helpers


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def _underlay(published: Any, ours: Any) -> Any:
    """``ours`` with every key of ``published`` it lacks, nested objects merged the same way."""
    if not isinstance(published, dict) or not isinstance(ours, dict):
        return ours
    merged = {key: copy.deepcopy(value) for key, value in published.items() if key not in ours}
    for key, value in ours.items():
        merged[key] = _underlay(published.get(key), value) if isinstance(value, dict) else value
    return merged


PUBLISHED_FIXTURES = Path(__file__).parent / "contracts" / "stripe_published_fixtures.json"


def published_fixtures() -> dict[str, Obj]:
    """Stripe's published example object of each resource the product uses, by its `object`
    name (fakes/contracts/stripe_published_fixtures.json names the repository, path and commit)."""
    return json.loads(PUBLISHED_FIXTURES.read_text())["resources"]


def _strip_legacy(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _strip_legacy(item)
    elif isinstance(node, dict):
        for name in LEGACY_FIELDS.get(node.get("object", ""), ()):
            node.pop(name, None)
        for value in node.values():
            _strip_legacy(value)


def _merge_metadata(target: dict[str, str], update: Any) -> None:
    # Stripe merges metadata keys; an empty string deletes one, and metadata="" clears them all.
    if update == "":
        target.clear()
        return
    for key, value in _metadata(update).items():
        if value == "":
            target.pop(key, None)
        else:
            target[key] = value


def _created_matches(created: int, condition: Any) -> bool:
    if condition in (None, ""):
        return True
    if not isinstance(condition, dict):
        return created == _int(condition, "created")
    checks = {
        "gt": lambda bound: created > bound,
        "gte": lambda bound: created >= bound,
        "lt": lambda bound: created < bound,
        "lte": lambda bound: created <= bound,
    }
    for op, raw in condition.items():
        if op not in checks:
            raise _ApiError(400, f"Received unknown parameter: created[{op}]", param=f"created[{op}]")
        if not checks[op](_int(raw, f"created[{op}]")):
            return False
    return True
