"""Accounts are unique by the one spelling of their address (core/addresses.py), however they
are made: sign-up, the admin, the shell, or before this rule (a migration folds those)."""

from __future__ import annotations

import importlib

import pytest
from allauth.account.models import EmailAddress
from django.apps import apps

from accounts.models import User
from dreampixel.tests.test_staff_roles import INLINE, admin_client

pytestmark = pytest.mark.django_db


def test_the_shell_and_the_admin_store_the_one_spelling():
    assert User.objects.create_user(email='"Ada"@ＥＸＡＭＰＬＥ.com.').email == "ada@example.com"
    with pytest.raises(ValueError, match="before the @"):
        User.objects.create_user(email='"ada lovelace"@example.com')

    superuser = admin_client("superuser")
    form = {"email": "grace@ｅxample.com", "password1": "a long passphrase 42", "password2": "a long passphrase 42",
            "usable_password": "true", "staff_reason": "New colleague", **INLINE}  # fmt: skip
    superuser.post("/admin/accounts/user/add/", form)
    assert User.objects.filter(email="grace@example.com").exists()
    again = superuser.post("/admin/accounts/user/add/", {**form, "email": '"grace"@example.com'})
    assert again.status_code == 200 and User.objects.filter(email__endswith="example.com").count() == 2


def test_addresses_stored_before_are_folded_unless_another_account_has_the_spelling():
    # As the site stored them before: whatever the sign-up form let through.
    folded = User.objects.create(email="frank@ｅxample.com")
    EmailAddress.objects.create(user=folded, email="frank@ｅxample.com", verified=True, primary=True)
    taken = User.objects.create(email="ann@example.com")
    twin = User.objects.create(email="ann@ｅxample.com")
    upper = User.objects.create(email="Bob@Example.com")

    migration = importlib.import_module("accounts.migrations.0007_canonical_emails")
    migration.fold_stored_addresses(apps, None)

    assert User.objects.get(pk=folded.pk).email == "frank@example.com"
    assert EmailAddress.objects.get(user=folded).email == "frank@example.com"
    assert User.objects.get(pk=taken.pk).email == "ann@example.com"
    assert User.objects.get(pk=twin.pk).email == "ann@ｅxample.com"  # left: the bonus key folds it anyway
    assert User.objects.get(pk=upper.pk).email == "bob@example.com"


@pytest.mark.parametrize("role", ["view only", "Support", "superuser"])
def test_the_user_forms_show_the_reason_they_require_to_whoever_may_save_them(role):
    from accounts.tests.factories import UserFactory

    customer = UserFactory()
    client = admin_client(role)
    change = client.get(f"/admin/accounts/user/{customer.pk}/change/")
    assert change.status_code == 200
    assert ('name="staff_reason"' in change.content.decode()) == (role != "view only")
    if role == "superuser":
        assert 'name="staff_reason"' in client.get("/admin/accounts/user/add/").content.decode()
