"""One signup bonus per mailbox, ever: deleting the account and signing up again,
a +tag, dots in a Gmail address or Google instead of email collect nothing more."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import User
from accounts.services import user_delete
from accounts.tests.factories import PASSWORD
from accounts.tests.google import google_settings, google_sign_in
from billing.mailbox import mailbox_hash, mailbox_normalize
from billing.models import LedgerEntry, SignupBonusClaim
from billing.pricing import SIGNUP_CREDITS
from billing.services import balance_of

pytestmark = pytest.mark.django_db


def email_sign_up(address: str, capture) -> User:
    client = Client()
    mail.outbox.clear()
    with capture(execute=True):
        client.post(reverse("account_signup"), {"email": address, "password1": PASSWORD, "password2": PASSWORD})
    link = re.search(r"(/accounts/confirm-email/[^\s]+/)", mail.outbox[0].body).group(1)
    with capture(execute=True):
        client.post(link)
    return User.objects.get(email=address.lower())


@pytest.fixture(autouse=True)
def _no_mail_cooldown(settings):
    # allauth sends one confirmation mail per address every few minutes; these tests need two.
    settings.ACCOUNT_RATE_LIMITS = False


def bonuses() -> int:
    return LedgerEntry.objects.filter(kind="signup_bonus").count()


@pytest.mark.parametrize(
    ("first", "again"),
    [
        ("ada@example.com", "ada@example.com"),
        ("ada@example.com", "ADA@Example.com"),
        ("ada@example.com", "ada+1@example.com"),
        ("ada.lovelace@gmail.com", "adalovelace+x@googlemail.com"),
    ],
)
def test_sign_up_delete_sign_up_again_collects_the_bonus_once(first, again, django_capture_on_commit_callbacks):
    user = email_sign_up(first, django_capture_on_commit_callbacks)
    assert balance_of(user) == SIGNUP_CREDITS
    user_delete(user=user)

    again_user = email_sign_up(again, django_capture_on_commit_callbacks)
    assert again_user.pk != user.pk
    assert balance_of(again_user) == 0
    assert bonuses() == 1


def test_a_google_sign_up_after_an_email_one_for_the_same_mailbox_gets_nothing(
    client, settings, django_capture_on_commit_callbacks
):
    user = email_sign_up("sam.roe@gmail.com", django_capture_on_commit_callbacks)
    user_delete(user=user)
    google_settings(settings)
    with django_capture_on_commit_callbacks(execute=True):
        google_sign_in(client, sub="3001", email="samroe@gmail.com", name="Sam Roe")
    assert balance_of(User.objects.get(email="samroe@gmail.com")) == 0
    assert bonuses() == 1


def test_different_mailboxes_still_each_get_the_bonus(django_capture_on_commit_callbacks):
    a = email_sign_up("a.b@example.com", django_capture_on_commit_callbacks)
    b = email_sign_up("ab@example.com", django_capture_on_commit_callbacks)  # dots matter outside Gmail
    assert balance_of(a) == balance_of(b) == SIGNUP_CREDITS


def test_the_address_is_stored_only_as_a_keyed_hash(django_capture_on_commit_callbacks, settings):
    user = email_sign_up("private.person+promo@gmail.com", django_capture_on_commit_callbacks)
    user_delete(user=user)
    claim = SignupBonusClaim.objects.get()
    assert claim.mailbox_hash == mailbox_hash("privateperson@gmail.com")
    settings.MAILBOX_HASH_KEY = "another-key"
    assert claim.mailbox_hash != mailbox_hash("privateperson@gmail.com")  # useless without the key


def test_normalization():
    assert mailbox_normalize(" Name+Tag@Example.COM ") == "name@example.com"
    assert mailbox_normalize("j.o.h.n+x@GoogleMail.com") == "john@gmail.com"
    assert mailbox_normalize("j.o.h.n@example.com") == "j.o.h.n@example.com"
