"""No user-controlled input answers 5xx: NUL, overlong, non-UTF-8 and odd Unicode
in every URL pattern's path parameters, query strings and form fields: anonymous, signed in,
and (for the sweep) as staff with a second factor."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import quote, quote_from_bytes

import pytest
import stripe
from django.test import Client
from django.urls import get_resolver
from django.urls.resolvers import RoutePattern, URLResolver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import CheckoutSession, LedgerEntry
from billing.tests.stripe_kit import WEBHOOK_SECRET
from generation.models import Job, JobReport, ProviderWebhook
from generation.tests.factories import local_model

pytestmark = pytest.mark.django_db

PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


def _routes(patterns, prefix: str = "") -> list[str]:
    routes: list[str] = []
    for pattern in patterns:
        if not isinstance(pattern.pattern, RoutePattern):
            continue  # the admin's app-list regex and DEBUG's media: covered by their neighbours
        route = prefix + str(pattern.pattern)
        routes += _routes(pattern.url_patterns, route) if isinstance(pattern, URLResolver) else [route]
    return routes


ROUTES = sorted(set(_routes(get_resolver().url_patterns)))

# What a person (or a script) can put in a URL or a form, beyond what a browser would.
NASTY = [
    "\x00",
    "a\x00b",
    "x" * 5_000,
    "\ud7ff\ufeff\u202e\u0301",  # last BMP letter, BOM, right-to-left override, lone combining mark
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🧨",
    "../../etc/passwd",
    "' OR 1=1 --",
    "-1",
    "99999999999999999999999",
    "00000000-0000-0000-0000-000000000000",
]
NON_UTF8 = [b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"a\x00\x80"]


def _fill(route: str, raw: str) -> str:
    return "/" + PARAM.sub(lambda _: raw, route)


@pytest.fixture
def staff_clients(clients, staff_user):
    staff = Client(raise_request_exception=False)
    staff.force_login(staff_user)
    return {**clients, "staff": staff}


@pytest.fixture
def clients(creator, settings):
    settings.RATELIMIT_ENABLE = False
    settings.ACCOUNT_RATE_LIMITS = False
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    local_model()
    signed_in = Client(raise_request_exception=False)
    signed_in.force_login(creator)
    return {"anonymous": Client(raise_request_exception=False), "signed in": signed_in}


def _send(client: Client, method: str, path: str, query: str, form: dict[str, str]):
    url = f"{path}?{query}" if query else path
    if method == "GET":
        return client.get(url)
    return client.post(url, form)


def test_every_route_survives_nasty_values_in_path_query_and_form(staff_clients, creator, staff_user):
    failures = []
    values = [quote(value, safe="") for value in NASTY] + [quote_from_bytes(raw) for raw in NON_UTF8]
    for n, route in enumerate(ROUTES):
        # Each route gets a different nasty value (rotating), in its path, its query and its form.
        value, text = values[n % len(values)], NASTY[n % len(NASTY)]
        path = _fill(route, value) if PARAM.search(route) else "/" + route
        query = f"session_id={value}&page={value}&q={value}"
        form = {"reason": text, "prompt": text, "email": text, "login": text, "password": text}
        for who, client in staff_clients.items():
            for method in ("GET", "POST"):
                # A POST to the sign-out page signs out: sign in again before each request.
                if who != "anonymous":
                    client.force_login(staff_user if who == "staff" else creator)
                response = _send(client, method, path, query, form)
                if response.status_code >= 500:
                    failures.append((who, method, path[:80], response.status_code))
    assert not failures, failures[:20]


odd_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8", categories=["Cc", "Cf", "Mn", "So", "Zl", "Zp"]), max_size=40),
    st.text(min_size=1_000, max_size=3_000),
    st.just("\x00"),
)
raw_value = st.one_of(
    odd_text.map(lambda text: quote(text.encode("utf-8", "surrogatepass"), safe="")),
    st.binary(min_size=1, max_size=40).map(quote_from_bytes),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(ROUTES),
    who=st.sampled_from(["anonymous", "signed in"]),
    method=st.sampled_from(["GET", "POST"]),
    path_value=raw_value,
    query=st.lists(
        st.tuples(st.sampled_from(["session_id", "page", "q", "status", "next", "o"]), raw_value), max_size=3
    ),
    form=st.dictionaries(
        st.sampled_from(["reason", "prompt", "email", "login", "password", "name", "model", "seed", "code"]),
        odd_text,
        max_size=4,
    ),
)
def test_random_input_anywhere_never_answers_5xx(clients, creator, route, who, method, path_value, query, form):
    if who == "signed in":
        clients[who].force_login(creator)
    path = _fill(route, path_value) if PARAM.search(route) else "/" + route
    query_string = "&".join(f"{key}={value}" for key, value in query)
    response = _send(clients[who], method, path, query_string, form)
    assert response.status_code < 500, (who, method, path[:100], query_string[:100], response.status_code)


# --- The cases the review found, one by one -------------------------------------------------


@pytest.mark.parametrize(
    "url", ["/s/%00/", "/s/%00/media/", "/s/%00/poster/", "/billing/checkout/success/?session_id=%00"]
)
def test_nul_bytes_in_the_address_are_a_400_not_a_500(creator, url):
    anonymous, signed_in = Client(raise_request_exception=False), Client(raise_request_exception=False)
    signed_in.force_login(creator)
    assert anonymous.get(url).status_code == 400
    assert signed_in.get(url).status_code == 400


def test_a_report_reason_with_a_nul_byte_is_refused_without_a_500(
    creator, sync_queue, django_capture_on_commit_callbacks
):
    from generation.services import job_create

    with django_capture_on_commit_callbacks(execute=True):
        job = job_create(user=creator, model=local_model(), prompt="A lighthouse", aspect_ratio="square")
    assert Job.objects.get(pk=job.pk).status == Job.Status.SUCCEEDED
    client = Client(raise_request_exception=False)
    client.force_login(creator)
    response = client.post(f"/jobs/{job.pk}/report/", {"reason": "blurry\x00"})
    assert response.status_code == 400
    assert not JobReport.objects.filter(job=job).exists()


def test_a_signed_stripe_body_that_is_not_an_object_is_a_400(client, settings):
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    for body in ("[1,2]", "7", '"text"', "null"):
        header = stripe.WebhookSignature.generate_signature_header(body, WEBHOOK_SECRET, timestamp=int(time.time()))
        response = Client(raise_request_exception=False).post(
            "/webhooks/stripe/", body, content_type="application/json", headers={"stripe-signature": header}
        )
        assert response.status_code == 400, body
    assert not LedgerEntry.objects.exists() and not CheckoutSession.objects.exists()


def test_a_signed_replicate_delivery_with_an_overlong_webhook_id_is_a_400(fake_replicate):
    client = Client(raise_request_exception=False)
    body = json.dumps({"id": "p" * 20, "status": "succeeded"}).encode()
    response = client.post(
        "/webhooks/replicate/", body, content_type="application/json",
        headers=fake_replicate.sign(body, webhook_id="w" * 500),
    )  # fmt: skip
    assert response.status_code == 400
    body = json.dumps({"id": "\x00" + "p" * 20, "status": "succeeded"}).encode()
    assert client.post("/webhooks/replicate/", body, content_type="application/json",
                       headers=fake_replicate.sign(body)).status_code == 400  # fmt: skip
    assert not ProviderWebhook.objects.exists()
