"""Random input to the forms and the webhook endpoints: never a 500, never a stray charge or grant."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import LedgerEntry
from billing.services import balance_of
from generation.models import Job
from generation.tests.factories import AIModelFactory, local_model

pytestmark = pytest.mark.django_db

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
text = st.text(max_size=300)
maybe = lambda strategy: st.one_of(st.none(), strategy)  # noqa: E731
junk_files = st.lists(
    st.tuples(
        st.text(alphabet="abcdefghij_-0123456789", min_size=1, max_size=12).map(lambda n: n + ".png"),
        st.binary(max_size=2_000),
    ).map(lambda p: SimpleUploadedFile(*p)),
    max_size=12,
)


@pytest.fixture
def signed_in(creator, settings):
    settings.RATELIMIT_ENABLE = False
    local_model()
    AIModelFactory(
        key="fz-edit", name="Editor", kind="image_edit", aspect_ratios={"original": "original"}, credit_cost=1_000
    )
    client = Client(raise_request_exception=False)
    client.force_login(creator)
    return client


def charged_only_for_jobs(user) -> bool:
    charges = -sum(LedgerEntry.objects.filter(account__user=user, kind="charge").values_list("amount", flat=True))
    return charges == sum(Job.objects.filter(user=user).values_list("cost", flat=True)) and balance_of(user) >= 0


def form_data(draw_values: dict) -> dict:
    return {key: value for key, value in draw_values.items() if value is not None}


fields = st.fixed_dictionaries(
    {
        "model": maybe(st.one_of(st.integers(-5, 10**9), text)),
        "prompt": maybe(text),
        "aspect_ratio": maybe(st.one_of(st.sampled_from(["portrait", "square", "landscape", "original"]), text)),
        "seed": maybe(st.one_of(st.integers(-(2**40), 2**40), text)),
        "style": maybe(text),
        "form_token": maybe(st.one_of(st.uuids().map(str), text)),
    }
)


@FUZZ
@given(data=fields, url=st.sampled_from(["/create/", "/create/video/", "/create/edit/"]))
def test_the_create_forms_never_fail_and_never_charge_without_a_job(signed_in, creator, data, url):
    response = signed_in.post(url, form_data(data))
    # 400: a NUL character, refused at the door (core/middleware.py).
    assert response.status_code in (200, 302, 400), response.status_code
    assert charged_only_for_jobs(creator)


@FUZZ
@given(data=fields, files=junk_files, single=junk_files)
def test_the_upload_forms_never_fail_and_store_nothing_for_junk(signed_in, creator, data, files, single):
    batch = signed_in.post("/batches/new/", form_data(data) | {"photos": files})
    edit = signed_in.post("/create/edit/", form_data(data) | ({"photo": single[0]} if single else {}))
    assert batch.status_code in (200, 302, 400) and edit.status_code in (200, 302, 400)
    assert not Job.objects.filter(user=creator).exists()  # random bytes are never a photo
    assert balance_of(creator) == 10_000


headers = st.dictionaries(
    st.sampled_from(["stripe-signature", "webhook-id", "webhook-timestamp", "webhook-signature", "content-type"]),
    st.text(max_size=120).filter(lambda v: "\n" not in v and "\r" not in v),
    max_size=5,
)


@FUZZ
@given(body=st.binary(max_size=3_000), head=headers, url=st.sampled_from(["/webhooks/stripe/", "/webhooks/replicate/"]))
def test_the_webhooks_reject_random_requests_without_a_500_or_a_grant(db, settings, body, head, url):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_fuzz"
    settings.STRIPE_SECRET_KEY = "sk_test_fuzz"
    settings.REPLICATE_API_TOKENS = ["r8_fuzz"]
    settings.REPLICATE_WEBHOOK_SECRET = "whsec_ZnV6emluZ2Z1enppbmdmdXp6aW5nZnV6emluZw=="
    client = Client(raise_request_exception=False)
    response = client.post(url, body, content_type="application/json", headers=head)
    assert response.status_code in (400, 404), response.status_code
    assert not LedgerEntry.objects.exists()
