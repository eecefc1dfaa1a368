from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.tests.factories import PASSWORD

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("stopped_clock")]


def test_login_posts_beyond_the_limit_get_the_friendly_429_page(client, settings, shared_cache):
    settings.RATELIMIT_LOGIN = "3/m"
    for _ in range(3):
        response = client.post(reverse("account_login"), {"login": "x@example.com", "password": "wrong"})
        assert response.status_code == 200
    response = client.post(reverse("account_login"), {"login": "x@example.com", "password": "wrong"})
    assert response.status_code == 429
    assert response["Retry-After"] == "60"
    assert "Slow down a little" in response.content.decode()
    # Reading the page is never limited.
    assert client.get(reverse("account_login")).status_code == 200


def test_sign_up_posts_beyond_the_limit_get_429_and_create_nobody(client, settings, shared_cache):
    from accounts.models import User

    settings.RATELIMIT_SIGNUP = "2/m"
    for n in range(2):
        data = {"email": f"new{n}@example.com", "password1": PASSWORD, "password2": PASSWORD}
        assert client.post(reverse("account_signup"), data).status_code == 302
    data = {"email": "third@example.com", "password1": PASSWORD, "password2": PASSWORD}
    response = client.post(reverse("account_signup"), data)
    assert response.status_code == 429
    assert not User.objects.filter(email="third@example.com").exists()


def test_htmx_requests_get_a_fragment_not_a_page(client, settings):
    settings.RATELIMIT_LOGIN = "1/m"
    client.post(reverse("account_login"), {"login": "x@example.com", "password": "wrong"})
    response = client.post(
        reverse("account_login"), {"login": "x@example.com", "password": "wrong"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 429
    assert "<html" not in response.content.decode()
    assert "Try again in 60 seconds" in response.content.decode()


def test_limits_count_per_client_address(client, settings):
    settings.RATELIMIT_LOGIN = "1/m"
    data = {"login": "x@example.com", "password": "wrong"}
    assert client.post(reverse("account_login"), data, REMOTE_ADDR="10.0.0.1").status_code == 200
    assert client.post(reverse("account_login"), data, REMOTE_ADDR="10.0.0.1").status_code == 429
    assert client.post(reverse("account_login"), data, REMOTE_ADDR="10.0.0.2").status_code == 200
