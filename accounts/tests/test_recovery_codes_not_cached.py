"""The pages that show a staff member's recovery codes are never kept by a browser or a proxy
(django-allauth 65.22.1; 65.21 sent the list page without Cache-Control): anyone holding the
codes passes the second factor."""

from __future__ import annotations

import pytest
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from django.urls import reverse

from accounts.tests.totp import authenticator_code

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in_staff(client, staff_user):
    RecoveryCodes.activate(staff_user)
    client.post(reverse("account_login"), {"login": staff_user.email, "password": "x-staff-password-1"})
    code = authenticator_code(staff_user.totp_secret)
    assert client.post(reverse("mfa_authenticate"), {"code": code}).status_code == 302
    # Showing the codes asks for the password again first.
    client.post(reverse("account_reauthenticate"), {"password": "x-staff-password-1"})
    return client


@pytest.mark.parametrize("page", ["mfa_view_recovery_codes", "mfa_download_recovery_codes"])
def test_recovery_code_pages_tell_every_cache_not_to_keep_them(signed_in_staff, page):
    response = signed_in_staff.get(reverse(page))
    assert response.status_code == 200, response.get("Location")
    cache_control = {part.strip() for part in response.get("Cache-Control", "").split(",")}
    assert {"no-store", "private"} <= cache_control, response.get("Cache-Control")
