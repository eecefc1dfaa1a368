"""Signed is not the same as well-formed: a signed webhook body we cannot store is refused with 400
and leaves nothing behind (a 500 would make Stripe deliver it again for days). So is a signature
dated beyond the tolerance in the future."""

from __future__ import annotations

import json
import time

import pytest

from billing.models import StripeEvent
from billing.tests.stripe_kit import WEBHOOK_SECRET, WEBHOOK_URL
from fakes.stripe import sign

pytestmark = pytest.mark.django_db


def event(**fields) -> dict:
    return {"id": "evt_1", "type": "customer.created", "object": "event", "livemode": False,
            "data": {"object": {"id": "cus_1", "object": "customer"}}, **fields}  # fmt: skip


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


BODIES = {
    "an id of 5,000 characters": json.dumps(event(id="evt_" + "x" * 5_000)),
    "a type of 5,000 characters": json.dumps(event(type="customer." + "x" * 5_000)),
    "a NUL in the id": json.dumps(event(id="evt_\u0000")),
    "a NUL deep in the object": json.dumps(event(data={"object": {"id": "cus_1", "name": "a\u0000b"}})),
    "a lone surrogate in the type": json.dumps(event()).replace("customer.created", "customer.\\ud800"),
    "a lone surrogate in a key": json.dumps(event(data={"object": {"id": "cus_1", "\ud800": 1}})),
    "5,000-deep nesting": json.dumps(event()).replace('"livemode": false', f'"livemode": {deep(5_000)}'),
    "100-deep nesting": json.dumps(event()).replace('"livemode": false', f'"livemode": {deep(100)}'),
    "an id that is an object": json.dumps(event(id={"evt": 1})),
    "a type that is a number": json.dumps(event(type=12)),
}


@pytest.mark.parametrize("body", list(BODIES.values()), ids=list(BODIES))
def test_a_signed_but_malformed_event_is_refused_and_nothing_is_stored(client, settings, body):
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    client.raise_request_exception = False
    # json.dumps escapes everything outside ASCII: the surrogates and NULs arrive as \uXXXX escapes.
    response = client.post(WEBHOOK_URL, body, content_type="application/json",
                           headers={"stripe-signature": sign(body, WEBHOOK_SECRET)})  # fmt: skip
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()


def test_a_signature_dated_in_the_future_beyond_the_tolerance_is_refused(client, settings):
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    body = json.dumps(event())
    for seconds_ahead, accepted in ((3_600, False), (301 + 5, False), (30, True)):
        StripeEvent.objects.all().delete()
        header = sign(body, WEBHOOK_SECRET, timestamp=int(time.time()) + seconds_ahead)
        response = client.post(WEBHOOK_URL, body, content_type="application/json", headers={"stripe-signature": header})
        assert (response.status_code == 200) == accepted, seconds_ahead
        assert StripeEvent.objects.exists() == accepted
