"""Suite-wide test setup: PostgreSQL only, fast hashing, plain static files, fresh cache and media."""

from __future__ import annotations

import pytest
from django.conf import settings


def pytest_configure(config: pytest.Config) -> None:
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise pytest.UsageError(
            "The test suite runs on PostgreSQL (money and concurrency rules are enforced there). "
            "Run `make test`, or set DATABASE_URL=postgres://postgres@127.0.0.1:5432/dreampixel."
        )
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Hashed static names need collectstatic first; `make test` checks that build separately.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _isolated_cache_and_media(settings, tmp_path) -> None:
    from django.core.cache import cache

    settings.MEDIA_ROOT = tmp_path / "media"
    cache.clear()  # rate-limit counters must not leak from one test into the next


@pytest.fixture
def staff_user(db):
    """A superuser with an authenticator app: what the back office requires."""
    from allauth.account.models import EmailAddress
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    from accounts.models import User

    user = User.objects.create_superuser(email="ops@dreampixel.example", password="x-staff-password-1")  # noqa: S106
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    user.totp_secret = generate_totp_secret()
    TOTP.activate(user, user.totp_secret)
    return user


@pytest.fixture
def staff_client(staff_user):
    # Its own client, so a test can act as staff and as a customer side by side.
    from django.test import Client

    client = Client()
    client.force_login(staff_user)
    client.staff = staff_user
    return client
