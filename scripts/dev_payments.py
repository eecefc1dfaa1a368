#!/usr/bin/env python3
"""`make dev`'s payments sandbox: the fake Stripe on PAYMENTS_SANDBOX_URL, with a checkout page and
a test card, a portal, a dashboard with refunds, and every event sent back to the site's webhook
(fakes/sandbox.py). It knows the site's packs and plans and the customers the database remembers,
so it carries on after a restart. Nothing is charged; the site refuses the sandbox in production."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dreampixel.settings")


def main() -> int:
    import django  # noqa: PLC0415 (after the path and settings above)

    django.setup()
    from django.conf import settings  # noqa: PLC0415

    from billing.models import CreditPack, Plan, StripeCustomer  # noqa: PLC0415
    from fakes.sandbox import PaymentsSandbox  # noqa: PLC0415
    from fakes.stripe import FakeStripe  # noqa: PLC0415

    if not settings.PAYMENTS_SANDBOX:
        print("dev_payments: PAYMENTS_SANDBOX is off; `make dev` turns it on.", file=sys.stderr)
        return 1
    address = urlsplit(settings.PAYMENTS_SANDBOX_URL)
    fake = FakeStripe(legacy_fields=False, port=address.port or 8010)
    for pack in CreditPack.objects.exclude(stripe_price_id=""):
        fake.add_price(pack.stripe_price_id, pack.price_cents, pack.currency, product_name=pack.name)
    for plan in Plan.objects.exclude(stripe_price_id=""):
        fake.add_price(plan.stripe_price_id, plan.price_cents, plan.currency, recurring=True, product_name=plan.name)
    for customer in StripeCustomer.objects.select_related("user"):
        fake.add_customer(customer.user.email, customer_id=customer.customer_id, user_id=str(customer.user_id))
    site = os.environ.get("DREAMPIXEL_DEV_URL", "http://127.0.0.1:8000")
    fake.start()
    PaymentsSandbox(fake, webhook_url=f"{site}/webhooks/stripe/", webhook_secret=settings.STRIPE_WEBHOOK_SECRET)
    print(f"Payments sandbox on {fake.url} (its dashboard: refunds, renewals); nothing is charged.", flush=True)

    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
