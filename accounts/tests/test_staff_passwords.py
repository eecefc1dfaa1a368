"""Setting someone's password lets you sign in as them: Support cannot, it sends a reset email
(recorded); a superuser can, with a reason, and the change is in the staff trail."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import StaffAction, User
from accounts.tests.factories import PASSWORD, UserFactory
from dreampixel.tests.test_staff_roles import admin_client

pytestmark = pytest.mark.django_db

NEW = "a brand new passphrase 42"


def can_sign_in(user: User, password: str) -> bool:
    return Client().login(email=user.email, password=password)


def set_password(client: Client, user: User, reason: str | None = "Locked out, verified by phone"):
    form = {"password1": NEW, "password2": NEW, "usable_password": "true"}
    if reason is not None:
        form["reason"] = reason
    return client.post(reverse("admin:auth_user_password_change", args=[user.pk]), form)


def test_support_cannot_set_a_customers_password():
    customer = UserFactory()
    support = admin_client("Support")
    assert support.get(reverse("admin:auth_user_password_change", args=[customer.pk])).status_code == 403
    assert set_password(support, customer).status_code == 403
    assert not can_sign_in(customer, NEW) and can_sign_in(customer, PASSWORD)
    # The customer's page offers no way there.
    page = support.get(reverse("admin:accounts_user_change", args=[customer.pk])).content.decode()
    assert "password/" not in page


def test_support_sends_a_reset_email_instead_and_it_is_recorded():
    customer = UserFactory()
    support = admin_client("Support")
    form = {"action": "send_password_reset", "_selected_action": [customer.pk], "staff_reason_given": "1",
            "reason": "Customer asked by phone, ticket 77"}  # fmt: skip
    support.post(reverse("admin:accounts_user_changelist"), form)
    assert [message.to for message in mail.outbox] == [[customer.email]]
    assert "/accounts/password/reset/key/" in mail.outbox[0].body
    action = StaffAction.objects.get(kind=StaffAction.Kind.PASSWORD_RESET)
    assert action.user == customer and action.reason == "Customer asked by phone, ticket 77"
    assert action.staff == User.objects.get(groups=Group.objects.get(name="Support"))
    assert can_sign_in(customer, PASSWORD)  # nothing changed until the customer follows the link


def test_a_superuser_sets_a_password_only_with_a_reason_and_it_is_recorded():
    customer = UserFactory()
    superuser = admin_client("superuser")
    refused = set_password(superuser, customer, reason=None)
    assert refused.status_code == 200 and "reason" in refused.content.decode().lower()
    assert can_sign_in(customer, PASSWORD) and not StaffAction.objects.exists()

    assert set_password(superuser, customer).status_code == 302
    assert can_sign_in(customer, NEW)
    action = StaffAction.objects.get()
    assert (action.kind, action.user, action.reason) == (
        StaffAction.Kind.PASSWORD_SET, customer, "Locked out, verified by phone",
    )  # fmt: skip
    assert action.staff.is_superuser
    assert NEW not in str(action.details)
