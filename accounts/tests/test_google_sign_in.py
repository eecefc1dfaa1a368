from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.core import mail
from django.urls import reverse

from accounts.models import User
from accounts.tests.factories import PASSWORD, UserFactory
from accounts.tests.google import google_settings, google_sign_in

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _google(settings):
    google_settings(settings)


def _signed_in_user(client):
    return User.objects.get(pk=client.session["_auth_user_id"]) if "_auth_user_id" in client.session else None


def test_the_sign_in_page_offers_google(client):
    page = client.get(reverse("account_login")).content.decode()
    assert "Continue with Google" in page


def test_a_first_google_sign_in_creates_the_user_with_name_and_verified_email(client):
    response = google_sign_in(client, sub="1001", email="Lin@Example.com", name="Lin Wei")
    assert response.status_code == 302
    assert response["Location"] == reverse("create")  # sign-in lands where people create

    user = User.objects.get(email="lin@example.com")
    assert user.name == "Lin Wei"
    assert _signed_in_user(client) == user
    assert EmailAddress.objects.get(user=user).verified
    assert SocialAccount.objects.get(user=user).uid == "1001"

    profile = client.get(reverse("profile")).content.decode()
    assert "Lin Wei" in profile and "Google: " in profile


def test_a_second_google_sign_in_logs_the_same_user_in(client):
    google_sign_in(client, sub="1002", email="sam@example.com", name="Sam Roe")
    client.post(reverse("account_logout"))
    assert _signed_in_user(client) is None

    response = google_sign_in(client, sub="1002", email="sam@example.com", name="Sam Roe")
    assert response.status_code == 302
    assert User.objects.filter(email="sam@example.com").count() == 1
    assert _signed_in_user(client) == User.objects.get(email="sam@example.com")


def test_a_google_email_that_matches_an_existing_account_does_not_take_it_over(client):
    # allauth's safe default: an existing account is never logged into, nor a second account
    # created, just because a provider reports the same address. Without revealing that the
    # address is registered, allauth emails its owner, who can sign in and connect Google.
    owner = UserFactory(email="kim@example.com", name="Kim Owner")
    response = google_sign_in(client, sub="1003", email="kim@example.com", name="Somebody Else")

    assert _signed_in_user(client) is None
    assert User.objects.filter(email__iexact="kim@example.com").count() == 1
    assert not SocialAccount.objects.filter(user=owner).exists()
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["kim@example.com"]
    assert "already" in mail.outbox[0].body


def test_a_forged_state_is_refused(client):
    response = google_sign_in(client, sub="1004", email="eve@example.com", state="forged")
    assert response.status_code == 401
    assert not User.objects.filter(email="eve@example.com").exists()


def test_a_token_issued_for_another_app_is_refused(client):
    response = google_sign_in(client, sub="1005", email="mal@example.com", audience="someone-else")
    assert response.status_code == 401
    assert not User.objects.filter(email="mal@example.com").exists()


def test_with_email_sign_in_off_a_new_google_user_is_signed_up(client, settings):
    settings.EMAIL_LOGIN_ENABLED = False
    response = google_sign_in(client, sub="1101", email="nia@example.com", name="Nia Only")
    assert response.status_code == 302 and response["Location"] == reverse("create")
    assert _signed_in_user(client) == User.objects.get(email="nia@example.com")


def test_with_email_sign_in_off_a_password_signs_in_staff_alone(client, settings):
    settings.EMAIL_LOGIN_ENABLED = False
    UserFactory(email="pat@example.com")
    staff = User.objects.create_superuser(email="boss@example.com", password=PASSWORD)
    EmailAddress.objects.create(user=staff, email=staff.email, verified=True, primary=True)
    page = client.get(reverse("account_login")).content.decode()
    assert "Continue with Google" in page and "Staff: sign in with email and password" in page
    refused = client.post(reverse("account_login"), {"login": "pat@example.com", "password": PASSWORD})
    assert refused.status_code == 200 and _signed_in_user(client) is None
    client.post(reverse("account_login"), {"login": "boss@example.com", "password": PASSWORD})
    assert _signed_in_user(client) == staff
    client.post(reverse("account_logout"))
    # Email sign-up is closed: the form is not offered, and a post makes nobody.
    client.post("/accounts/signup/", {"email": "new@example.com", "password1": PASSWORD, "password2": PASSWORD})
    assert not User.objects.filter(email="new@example.com").exists()
