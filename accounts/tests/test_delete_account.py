from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress
from django.urls import reverse

from accounts.models import User
from accounts.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def test_deleting_needs_the_email_typed_and_changes_nothing_otherwise(client):
    user = UserFactory()
    client.force_login(user)
    response = client.post(reverse("delete_account"), {"confirm_email": "someone@else.com"})
    assert response.status_code == 200
    assert "not your email address" in response.content.decode()
    user.refresh_from_db()
    assert user.is_active and user.deleted_at is None


def test_deleting_an_account_anonymizes_it_signs_out_and_blocks_sign_in(client):
    user = UserFactory(email="leaving@example.com", name="Leaving Person")
    client.force_login(user)
    response = client.post(reverse("delete_account"), {"confirm_email": "Leaving@example.com"}, follow=True)
    assert "Your account was deleted." in response.content.decode()

    user.refresh_from_db()
    assert not user.is_active
    assert user.deleted_at is not None
    assert user.name == ""
    assert "leaving" not in user.email
    assert not user.has_usable_password()
    assert not EmailAddress.objects.filter(email__iexact="leaving@example.com").exists()

    assert client.get(reverse("profile")).status_code == 302
    client.post(reverse("account_login"), {"login": "leaving@example.com", "password": PASSWORD})
    assert client.get(reverse("profile")).status_code == 302

    # The address is free again for a new account.
    assert not User.objects.filter(email="leaving@example.com").exists()
