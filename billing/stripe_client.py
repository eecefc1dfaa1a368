"""The one place a Stripe client is built. Payments are configured when STRIPE_SECRET_KEY is set."""

from __future__ import annotations

from functools import lru_cache

import stripe
from django.conf import settings

# Connect, read (seconds): a web request waiting on Stripe should fail rather than hang.
TIMEOUT = (5, 30)
# The library retries connection errors, 409s and 5xx with Stripe's own idempotency keys.
MAX_NETWORK_RETRIES = 2


def payments_configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def stripe_client() -> stripe.StripeClient:
    if not payments_configured():
        raise stripe.AuthenticationError("Payments are not configured: STRIPE_SECRET_KEY is not set.")
    return _client(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE)


@lru_cache(maxsize=4)
def _client(secret_key: str, api_base: str) -> stripe.StripeClient:
    # Cached per key and address: its HTTP client keeps one pooled session per thread.
    return stripe.StripeClient(
        secret_key,
        base_addresses={"api": api_base} if api_base else None,
        max_network_retries=MAX_NETWORK_RETRIES,
        http_client=stripe.RequestsClient(timeout=TIMEOUT),
    )
