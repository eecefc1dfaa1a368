"""The staff's second-factor secrets are encrypted at rest: a copy of the database (a backup, a
read replica, an injected SELECT) gives no one the codes. The key comes from the environment,
secrets stored before are encrypted by a migration, and keys rotate without a lost factor."""

from __future__ import annotations

import importlib
import time

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from cryptography.fernet import Fernet
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.mfa import MFASecretUnreadable
from accounts.tests.totp import authenticator_code

pytestmark = pytest.mark.django_db


def stored(user) -> str:
    """What a database read shows of the person's authenticators."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT string_agg(data::text, ' ') FROM mfa_authenticator WHERE user_id = %s", [user.pk])
        return cursor.fetchone()[0] or ""


def second_factor_accepted(user, secret: str) -> bool:
    client = Client()
    client.post(reverse("account_login"), {"login": user.email, "password": "x-staff-password-1"})
    return client.post(reverse("mfa_authenticate"), {"code": authenticator_code(secret)}).status_code == 302


def test_a_database_read_shows_neither_the_totp_secret_nor_the_recovery_seed(staff_user):
    codes = RecoveryCodes.activate(staff_user)
    seed = codes.instance.data["seed"]
    raw = stored(staff_user)
    assert staff_user.totp_secret not in raw
    assert "fernet:" in raw
    assert not any(code in raw for code in codes.get_unused_codes())
    assert seed.startswith("fernet:")
    assert second_factor_accepted(staff_user, staff_user.totp_secret)


def test_without_the_key_the_stored_secret_opens_for_nobody(staff_user, settings):
    settings.MFA_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    totp = TOTP(Authenticator.objects.get(user=staff_user, type=Authenticator.Type.TOTP))
    with pytest.raises(MFASecretUnreadable, match="MFA_ENCRYPTION_KEYS"):
        totp.validate_code(authenticator_code(staff_user.totp_secret))


def test_secrets_stored_in_plain_text_before_are_encrypted_by_the_migration(staff_user):
    # As the site stored them until now: the secret as it is.
    secret = generate_totp_secret()
    Authenticator.objects.filter(user=staff_user, type=Authenticator.Type.TOTP).update(data={"secret": secret})
    Authenticator.objects.create(user=staff_user, type=Authenticator.Type.RECOVERY_CODES,
                                 data={"seed": "ab" * 40, "used_mask": 0})  # fmt: skip
    assert secret in stored(staff_user)

    migration = importlib.import_module("accounts.migrations.0006_encrypt_mfa_secrets")
    migration.encrypt_stored_secrets(apps, None)
    migration.encrypt_stored_secrets(apps, None)  # twice: nothing is encrypted twice

    raw = stored(staff_user)
    assert secret not in raw and "ab" * 40 not in raw
    assert second_factor_accepted(staff_user, secret)


def test_a_new_key_in_front_then_the_command_then_the_old_key_removed_keeps_every_factor(staff_user, settings):
    old_key = settings.MFA_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    before = stored(staff_user)
    settings.MFA_ENCRYPTION_KEYS = [new_key, old_key]
    assert second_factor_accepted(staff_user, staff_user.totp_secret)  # the old key still opens it

    call_command("mfa_reencrypt")
    assert stored(staff_user) != before
    settings.MFA_ENCRYPTION_KEYS = [new_key]
    with time_machine.travel(time.time() + 60):  # the next code: a code already used is refused
        assert second_factor_accepted(staff_user, staff_user.totp_secret)
