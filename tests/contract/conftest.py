"""The live contract run (`make contract`): real Stripe test mode and real Replicate. Collected only
when `make contract` asks (DREAMPIXEL_CONTRACT=1), never by `make test`: it needs the network and
keys, spends a few cents at Replicate, and leaves objects in the Stripe test account."""

from __future__ import annotations

import os

import pytest

collect_ignore_glob = [] if os.environ.get("DREAMPIXEL_CONTRACT") == "1" else ["test_*.py"]

STRIPE_KEY = os.environ.get("CONTRACT_STRIPE_SECRET_KEY", "")
REPLICATE_TOKEN = os.environ.get("CONTRACT_REPLICATE_API_TOKEN", "")


@pytest.fixture
def stripe_test_key() -> str:
    if not STRIPE_KEY:
        pytest.skip("No Stripe test key: set CONTRACT_STRIPE_SECRET_KEY=sk_test_... to run the Stripe contract.")
    if not STRIPE_KEY.startswith("sk_test_"):
        pytest.fail("CONTRACT_STRIPE_SECRET_KEY must be a test-mode key (sk_test_...): the run buys and refunds.")
    return STRIPE_KEY


@pytest.fixture
def replicate_token() -> str:
    if not REPLICATE_TOKEN:
        pytest.skip("No Replicate token: set CONTRACT_REPLICATE_API_TOKEN=r8_... to run the Replicate contract.")
    return REPLICATE_TOKEN
