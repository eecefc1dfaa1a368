from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import User
from accounts.tests.factories import PASSWORD
from accounts.tests.totp import authenticator_code

pytestmark = pytest.mark.django_db


def test_a_staff_account_without_mfa_cannot_reach_the_admin(client):
    staff = User.objects.create_superuser(email="nomfa@example.com", password=PASSWORD)
    client.force_login(staff)
    response = client.get("/admin/", follow=True)
    # Sent to set up an authenticator (allauth first asks for the password again).
    assert reverse("mfa_activate_totp") in [url for url, _ in response.redirect_chain]
    assert "needs two-factor authentication" in response.content.decode()
    assert client.get("/admin/generation/job/").status_code == 302


def test_with_mfa_the_admin_opens(staff_client):
    assert staff_client.get("/admin/").status_code == 200
    assert staff_client.get("/admin/generation/job/").status_code == 200


def test_signing_in_to_the_admin_asks_for_the_second_factor(client, staff_user):
    login = client.get("/admin/")
    assert login.status_code == 302
    response = client.get(login["Location"], follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("account_login"))
    response = client.post(
        reverse("account_login") + "?next=/admin/", {"login": staff_user.email, "password": "x-staff-password-1"}
    )
    assert response["Location"] == reverse("mfa_authenticate")
    assert client.get("/admin/").status_code == 302  # not yet

    code = authenticator_code(staff_user.totp_secret)
    response = client.post(reverse("mfa_authenticate"), {"code": code})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_people_who_are_not_staff_never_reach_it(client):
    from accounts.tests.factories import UserFactory

    client.force_login(UserFactory())
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert client.get(response["Location"]).status_code == 403
