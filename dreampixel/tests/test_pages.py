from __future__ import annotations

import pytest
from django.test import RequestFactory
from django.views.defaults import server_error

pytestmark = pytest.mark.django_db


def test_an_unknown_page_gets_the_friendly_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "We couldn't find that" in page
    assert "css/site.css" in page


def test_a_server_error_gets_the_friendly_500_page():
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()


def test_pages_carry_a_content_security_policy_and_the_packaged_htmx(client):
    response = client.get("/")
    policy = response.get("Content-Security-Policy") or response.get("Content-Security-Policy-Report-Only")
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    page = response.content.decode()
    assert "/static/django-htmx/" in page or "/static/django_htmx/" in page
    assert "unpkg.com" not in page and "cdn" not in page.lower()


def test_terms_and_privacy_are_linked_from_the_footer_and_sign_up(client):
    for url, heading in (("/terms/", "Terms of service"), ("/privacy/", "Privacy")):
        assert heading in client.get(url).content.decode()
    assert 'href="/terms/"' in client.get("/").content.decode()
    signup = client.get("/accounts/signup/").content.decode()
    assert 'href="/terms/"' in signup and 'href="/privacy/"' in signup
