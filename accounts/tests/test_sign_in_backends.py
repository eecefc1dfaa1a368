"""Who counts as signed in: Django's and allauth's sign-in backends, through our session store."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.urls import reverse

from accounts.tests.factories import UserFactory
from core.sessions import SessionStore

pytestmark = pytest.mark.django_db


def _signed_in(client) -> bool:
    response = client.get(reverse("profile"))
    return response.status_code == 200


@pytest.mark.parametrize(
    "backend",
    ["django.contrib.auth.backends.ModelBackend", "allauth.account.auth_backends.AuthenticationBackend"],
)
def test_a_session_naming_either_sign_in_backend_is_signed_in(client, backend):
    user = UserFactory()
    session = SessionStore()
    session.update(
        {SESSION_KEY: str(user.pk), BACKEND_SESSION_KEY: backend, HASH_SESSION_KEY: user.get_session_auth_hash()}
    )
    session.create()
    client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
    assert _signed_in(client)


def test_a_session_naming_an_unknown_backend_is_not_signed_in(client):
    user = UserFactory()
    session = SessionStore()
    session.update(
        {
            SESSION_KEY: str(user.pk),
            BACKEND_SESSION_KEY: "somewhere.Else",
            HASH_SESSION_KEY: user.get_session_auth_hash(),
        }
    )
    session.create()
    client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
    assert not _signed_in(client)


def test_a_deactivated_person_is_signed_out_on_their_next_request(client):
    user = UserFactory()
    client.force_login(user)
    assert _signed_in(client)
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert not _signed_in(client)


def test_a_new_password_signs_out_the_other_sessions(client):
    user = UserFactory()
    client.force_login(user)
    user.set_password("a brand new passphrase")
    user.save()
    assert not _signed_in(client)
