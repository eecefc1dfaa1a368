from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.urls import reverse

from accounts.models import User
from accounts.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def _confirmation_link(message) -> str:
    match = re.search(r"https?://[^/\s]+(/accounts/confirm-email/[^\s]+/)", message.body)
    assert match, message.body
    return match.group(1)


def test_landing_page_explains_the_product_and_pricing(client):
    from generation.tests.factories import AIModelFactory

    AIModelFactory(key="landing-edit", kind="image_edit", credit_cost=1_000)
    response = client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Describe it. Dream Pixel makes it." in page
    assert "3,000" in page  # signup credits
    assert "Photo edit" in page and "1,000" in page


def test_sign_in_and_sign_up_pages_render_in_the_site_frame(client):
    for url in (reverse("account_login"), reverse("account_signup")):
        response = client.get(url)
        assert response.status_code == 200
        page = response.content.decode()
        assert 'class="card auth-card"' in page
        assert "css/site.css" in page


def test_a_new_user_signs_up_verifies_reaches_profile_signs_out_and_signs_in_again(client):
    response = client.post(
        reverse("account_signup"),
        {"email": "Ada@Example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    user = User.objects.get(email="ada@example.com")
    assert not EmailAddress.objects.get(user=user).verified

    # Not verified yet: the profile is out of reach.
    assert client.get(reverse("profile")).status_code == 302

    assert len(mail.outbox) == 1
    link = _confirmation_link(mail.outbox[0])
    assert client.get(link).status_code == 200
    response = client.post(link)
    assert response.status_code == 302
    assert EmailAddress.objects.get(user=user).verified

    profile = client.get(reverse("profile"))
    assert profile.status_code == 200
    assert "ada@example.com" in profile.content.decode()

    response = client.post(reverse("account_logout"))
    assert response.status_code == 302
    assert client.get(reverse("profile")).status_code == 302

    response = client.post(reverse("account_login"), {"login": "ada@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("create")  # sign-in lands where people create
    assert client.get(reverse("profile")).status_code == 200


def test_signing_in_with_an_unverified_address_sends_a_new_link_instead(client):
    user = UserFactory(verified=False)
    EmailAddress.objects.create(user=user, email=user.email, verified=False, primary=True)
    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert client.get(reverse("profile")).status_code == 302


def test_a_wrong_password_is_refused_with_a_message(client):
    user = UserFactory()
    response = client.post(reverse("account_login"), {"login": user.email, "password": "nope"})
    assert response.status_code == 200
    assert "not correct" in response.content.decode()


def test_signing_up_with_a_taken_address_creates_nothing_and_tells_only_the_owner(client):
    # allauth prevents account enumeration: the form looks the same as for a new address, and
    # the owner of the address gets an email saying someone tried to sign up with it.
    UserFactory(email="taken@example.com")
    response = client.post(
        reverse("account_signup"),
        {"email": "TAKEN@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    assert User.objects.filter(email__iexact="taken@example.com").count() == 1
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["taken@example.com"]
    assert "already" in mail.outbox[0].body


def test_profile_saves_the_name(client):
    user = UserFactory(name="")
    client.force_login(user)
    response = client.post(reverse("profile"), {"name": "  Grace Hopper "}, follow=True)
    assert "Your profile was saved." in response.content.decode()
    user.refresh_from_db()
    assert user.name == "Grace Hopper"


def test_profile_needs_sign_in(client):
    response = client.get(reverse("profile"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
