"""What a new person meets first: where sign-in lands, and the emails they get."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from accounts.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def test_signing_in_lands_on_the_create_page_with_a_word_on_what_credits_buy(client):
    from generation.tests.factories import local_model

    local_model()
    user = UserFactory()
    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("create")
    page = client.get(response["Location"]).content.decode()
    assert "You have 0 credits" in page
    assert "Buy credits" in page  # nothing to spend yet: the way to get some is right there


def test_sign_up_email_names_the_site_and_its_public_address_in_text_and_html(client, settings):
    settings.PUBLIC_BASE_URL = "https://dreampixel.example.com"
    client.post(
        reverse("account_signup"),
        {"email": "new@example.com", "password1": PASSWORD, "password2": PASSWORD},
        HTTP_HOST="127.0.0.1:8000",
    )
    message = mail.outbox[-1]
    assert "127.0.0.1" not in message.body and "example.com!" not in message.body
    assert "Dream Pixel" in message.body
    assert "https://dreampixel.example.com/accounts/confirm-email/" in message.body
    html, mime = message.alternatives[0]
    assert mime == "text/html"
    assert "Dream Pixel" in html and 'href="https://dreampixel.example.com/accounts/confirm-email/' in html
    assert "127.0.0.1" not in html


def test_a_password_reset_link_uses_the_public_address(client, settings):
    settings.PUBLIC_BASE_URL = "https://dreampixel.example.com"
    user = UserFactory()
    client.post(reverse("account_reset_password"), {"email": user.email}, HTTP_HOST="127.0.0.1:8000")
    message = mail.outbox[-1]
    assert "https://dreampixel.example.com/accounts/password/reset/key/" in message.body
    assert "127.0.0.1" not in message.body
