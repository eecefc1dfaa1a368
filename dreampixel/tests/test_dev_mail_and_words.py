"""What a person reads before signing in, and what a developer copies from the console."""

from __future__ import annotations

import io
import re

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.test import Client
from django.urls import reverse

from core.mail_console import EmailBackend

pytestmark = pytest.mark.django_db


def test_the_development_console_prints_the_text_part_with_a_link_that_can_be_copied_whole():
    link = "http://127.0.0.1:8000/accounts/confirm-email/MQ:1vSgkZ:Ok5qLWwE0x8bIacFhUV2ttLwTqQfGMDWqL8e9k-3=xyz/"
    message = EmailMultiAlternatives(
        "Please confirm", f"Open this link:\n\n{link}\n", "from@example.com", ["a@example.com"]
    )
    message.attach_alternative(f'<p><a href="{link}">Confirm</a></p>', "text/html")
    stream = io.StringIO()
    EmailBackend(stream=stream).send_messages([message])
    printed = stream.getvalue()
    assert link in printed.splitlines()  # on one line, as written, no quoted-printable `=3D`
    assert "<p>" not in printed and "text/html" not in printed
    assert "Subject: Please confirm" in printed and "To: a@example.com" in printed


def test_sign_in_and_sign_up_speak_the_site_s_words(client):
    for url, heading, button in (
        (reverse("account_login"), "Welcome back", "Sign in"),
        (reverse("account_signup"), "Create your account", "Create account"),
    ):
        page = client.get(url).content.decode()
        assert f"<h1>{heading}</h1>" in page
        assert re.search(rf">\s*{button}\s*</button>", page)
        assert "Email address</label>" in page
        assert "Email:" not in page and "Sign Up" not in page and "Sign In" not in page


def test_the_landing_page_names_only_the_ways_in_that_exist(client, settings):
    settings.GOOGLE_LOGIN_ENABLED = False
    page = client.get(reverse("landing")).content.decode()
    assert "With your email address." in page and "Google" not in page
    settings.GOOGLE_LOGIN_ENABLED = True
    assert "With Google or your email." in Client().get(reverse("landing")).content.decode()


def test_a_sign_up_verification_link_from_the_mail_opens_the_confirmation_page(client):
    client.post(
        reverse("account_signup"),
        {"email": "new@example.com", "password1": "a-long-pass-phrase-9", "password2": "a-long-pass-phrase-9"},
    )
    (message,) = mail.outbox
    link = re.search(r"http://\S+/accounts/confirm-email/\S+/", message.body).group(0)
    assert client.get(link.split("testserver", 1)[-1]).status_code == 200
