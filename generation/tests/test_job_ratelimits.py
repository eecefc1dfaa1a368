from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from accounts.tests.factories import UserFactory
from billing.services import balance_of, credits_grant
from generation.models import Job
from generation.tests.factories import local_model

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("stopped_clock")]


def submit(client, model, **extra):
    data = {"model": model.pk, "prompt": "quick one", "aspect_ratio": "square", "form_token": str(uuid.uuid4())}
    return client.post(reverse("create"), data, **extra)


def test_the_eleventh_job_in_a_minute_from_one_user_gets_429(client, creator):
    credits_grant(user=creator, amount=10_000, key="purchase:more")
    model = local_model()
    client.force_login(creator)
    for _ in range(10):
        assert submit(client, model).status_code == 302
    response = submit(client, model)
    assert response.status_code == 429
    assert "Try again in 60 seconds" in response.content.decode()
    assert response["Retry-After"] == "60"
    assert Job.objects.count() == 10
    assert balance_of(creator) == 20_000 - 10 * 500


def test_the_limits_come_from_settings_and_htmx_gets_a_fragment(client, creator, settings):
    settings.RATELIMIT_JOBS_PER_USER = "2/m"
    model = local_model()
    client.force_login(creator)
    assert submit(client, model).status_code == 302
    assert submit(client, model).status_code == 302
    response = submit(client, model, HTTP_HX_REQUEST="true")
    assert response.status_code == 429
    assert "<html" not in response.content.decode()


def test_one_address_is_limited_across_users(client, settings):
    settings.RATELIMIT_JOBS_PER_IP = "3/m"
    model = local_model()
    for n in range(4):
        user = UserFactory()
        credits_grant(user=user, amount=1_000, key=f"purchase:ip{n}")
        client.force_login(user)
        status = submit(client, model).status_code
        assert status == (302 if n < 3 else 429)
