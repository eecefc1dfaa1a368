from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from allauth.account.signals import email_confirmed, user_signed_up
from django.core import mail
from django.urls import reverse

from accounts.models import User
from accounts.tests.factories import PASSWORD, UserFactory
from accounts.tests.google import google_settings, google_sign_in
from billing.models import LedgerEntry
from billing.pricing import SIGNUP_CREDITS
from billing.services import balance_of, signup_bonus_grant

pytestmark = pytest.mark.django_db


def bonus_entries(user):
    return LedgerEntry.objects.filter(account__user=user, kind="signup_bonus")


def test_an_email_sign_up_gets_the_bonus_only_after_verifying(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("account_signup"), {"email": "new@example.com", "password1": PASSWORD, "password2": PASSWORD}
        )
    user = User.objects.get(email="new@example.com")
    assert balance_of(user) == 0
    assert not bonus_entries(user).exists()

    link = re.search(r"(/accounts/confirm-email/[^\s]+/)", mail.outbox[0].body).group(1)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(link)
    assert balance_of(user) == SIGNUP_CREDITS
    assert bonus_entries(user).get().idempotency_key == f"signup:{user.pk}"

    # The page shows it.
    page = client.get(reverse("billing")).content.decode()
    assert "3,000" in page and "Signup bonus" in page


def test_a_google_sign_up_with_a_verified_email_gets_the_bonus_at_once(
    client, settings, django_capture_on_commit_callbacks
):
    google_settings(settings)
    with django_capture_on_commit_callbacks(execute=True):
        google_sign_in(client, sub="2001", email="g@example.com", name="Gee Person")
    user = User.objects.get(email="g@example.com")
    assert balance_of(user) == SIGNUP_CREDITS

    # A second sign-in grants nothing more.
    client.post(reverse("account_logout"))
    with django_capture_on_commit_callbacks(execute=True):
        google_sign_in(client, sub="2001", email="g@example.com", name="Gee Person")
    assert bonus_entries(user).count() == 1


def test_a_google_sign_up_whose_email_google_has_not_verified_waits_for_verification(
    client, settings, django_capture_on_commit_callbacks
):
    google_settings(settings)
    with django_capture_on_commit_callbacks(execute=True):
        google_sign_in(client, sub="2002", email="unverified@example.com", email_verified=False)
    user = User.objects.get(email="unverified@example.com")
    assert balance_of(user) == 0


def test_the_bonus_is_granted_once_however_often_the_signals_fire(django_capture_on_commit_callbacks):
    user = UserFactory()
    address = EmailAddress.objects.get(user=user)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            user_signed_up.send(sender=User, request=None, user=user)
            email_confirmed.send(sender=EmailAddress, request=None, email_address=address)
    assert bonus_entries(user).count() == 1
    assert balance_of(user) == SIGNUP_CREDITS
    assert signup_bonus_grant(user=user) == bonus_entries(user).get()
