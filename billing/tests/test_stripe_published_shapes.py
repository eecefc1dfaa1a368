"""The fake Stripe and the product against Stripe's own published shapes.

fakes/contracts/stripe_published_fixtures.json holds Stripe's published example object of each
resource the product uses (stripe/openapi, openapi/fixtures3.json, at the commit it names). Two
promises are checked here: the fake invents no field Stripe does not have, with the type Stripe
gives it; and the product's whole money flow (a pack, a plan and its renewal, a refund, a dispute,
each through its signed webhook) gives exactly the right balance when every object carries every
field of Stripe's published example, not only those the fake models."""

from __future__ import annotations

import pytest
import stripe
from django.test import Client

from accounts.tests.factories import UserFactory
from billing.models import CreditPack, Plan
from billing.services import balance_of
from billing.tests.stripe_kit import WEBHOOK_SECRET, deliver, start_checkout
from fakes.stripe import LEGACY_FIELDS, FakeStripe, published_fixtures

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sync_queue")]

PUBLISHED = published_fixtures()
# The pinned library's own types are Stripe's other published shape: a field either names is real.
LIBRARY_TYPES = {
    "checkout.session": stripe.checkout.Session, "invoice": stripe.Invoice, "subscription": stripe.Subscription,
    "charge": stripe.Charge, "refund": stripe.Refund, "dispute": stripe.Dispute, "event": stripe.Event,
    "customer": stripe.Customer, "payment_intent": stripe.PaymentIntent, "price": stripe.Price,
    "product": stripe.Product, "invoice_payment": stripe.InvoicePayment,
}  # fmt: skip


@pytest.fixture
def stripe_fake(settings):
    # Every object the fake answers or sends carries the published example's other fields too.
    with FakeStripe(legacy_fields=False, published=PUBLISHED) as fake:
        settings.STRIPE_SECRET_KEY = "sk_test_dreampixel"
        settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
        settings.STRIPE_API_BASE = fake.url
        yield fake


def json_type(value) -> str:
    return type(value).__name__ if value is not None else "null"


def mismatches(ours: dict, theirs: dict, path: str = "", typed: type | None = None) -> list[str]:
    """Fields of `ours` that Stripe's example lacks (and the library's type, for a top-level
    field), or whose JSON type differs from the example's (null aside)."""
    found = []
    for key, value in ours.items():
        where = f"{path}{key}"
        if key not in theirs and not (typed is not None and key in typed.__annotations__):
            found.append(f"{where}: not in Stripe's example nor the library's type")
        elif key not in theirs:
            continue
        elif value is not None and theirs[key] is not None and json_type(value) != json_type(theirs[key]):
            found.append(f"{where}: {json_type(value)}, Stripe's example has {json_type(theirs[key])}")
        elif isinstance(value, dict) and isinstance(theirs[key], dict) and key != "metadata":
            found += mismatches(value, theirs[key], f"{where}.")
    return found


def every_kind_of_object(fake: FakeStripe, pack, plan, buyer, other) -> None:
    fake.complete_checkout(start_checkout(buyer, pack))
    fake.complete_checkout(start_checkout(other, plan))
    subscription = fake.objects("subscription")[0]
    fake.pay_invoice(subscription["id"])
    charge = fake.objects("charge")[0]
    fake.refund(charge["id"], amount=100)
    fake.dispute(fake.objects("charge")[1]["id"])


def test_the_fake_stripe_invents_no_field_and_no_type_that_stripe_does_not_publish(settings, buyer):
    with FakeStripe(legacy_fields=False) as fake:
        settings.STRIPE_SECRET_KEY = "sk_test_dreampixel"
        settings.STRIPE_API_BASE = fake.url
        pack = CreditPack.objects.create(name="Starter", credits=5_000, price_cents=500, stripe_price_id="price_t_pack")
        plan = Plan.objects.create(name="Plus", credits=15_000, price_cents=1_200, stripe_price_id="price_t_plus")
        fake.add_price(pack.stripe_price_id, pack.price_cents, pack.currency, product_name="Starter pack")
        fake.add_price(plan.stripe_price_id, plan.price_cents, plan.currency, recurring=True, product_name="Plus")
        every_kind_of_object(fake, pack, plan, buyer, UserFactory())
        seen: dict[str, int] = {}
        problems = []
        for event in fake.events:
            envelope = {k: v for k, v in event.items() if k != "data"}
            problems += [f"event {p}" for p in mismatches(envelope, PUBLISHED["event"], typed=stripe.Event)]
            obj = event["data"]["object"]
            seen[obj["object"]] = seen.get(obj["object"], 0) + 1
            legacy = set(LEGACY_FIELDS.get(obj["object"], ()))
            theirs = PUBLISHED[obj["object"]]
            ours = {k: v for k, v in obj.items() if k not in legacy}
            problems += [f"{obj['object']}.{p}" for p in mismatches(ours, theirs, typed=LIBRARY_TYPES[obj["object"]])]
    assert {"checkout.session", "invoice", "subscription", "charge", "refund", "dispute"} <= set(seen)
    assert sorted(set(problems)) == []


def test_the_whole_money_flow_gives_the_right_balance_with_stripes_published_shapes(stripe_fake, pack, plan, buyer):
    client = Client()
    subscriber = UserFactory()
    # A pack, paid.
    deliver(client, stripe_fake.complete_checkout(start_checkout(buyer, pack)))
    assert balance_of(buyer) == 5_000
    # A plan, its first invoice, then a renewal.
    completed = stripe_fake.complete_checkout(start_checkout(subscriber, plan))
    for event in [completed, *stripe_fake.events_of_type("invoice.paid")]:
        deliver(client, event)
    assert balance_of(subscriber) == 15_000
    subscription_id = completed["data"]["object"]["subscription"]
    deliver(client, stripe_fake.pay_invoice(subscription_id))
    assert balance_of(subscriber) == 30_000
    # A refund of half the pack, then a dispute of the plan's first payment.
    payment_intent = stripe_fake.get(stripe_fake.objects("checkout.session")[0]["id"])["payment_intent"]
    refunded, _ = stripe_fake.refund(payment_intent, amount=250)
    deliver(client, refunded)
    assert balance_of(buyer) == 2_500
    first_charge = next(
        c for c in stripe_fake.objects("charge") if c["customer"] != stripe_fake.objects("charge")[0]["customer"]
    )
    deliver(client, stripe_fake.dispute(first_charge["id"]))
    assert balance_of(subscriber) == 15_000
