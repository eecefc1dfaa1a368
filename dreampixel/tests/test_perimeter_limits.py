"""Guessing is capped: second-factor codes, passwords per account and reset mails,
on a client address that proxies cannot blur and clients cannot forge."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client, RequestFactory
from django.urls import reverse

from accounts.tests.factories import PASSWORD, UserFactory
from accounts.tests.totp import authenticator_code
from core.clientip import UNKNOWN, client_ip

pytestmark = pytest.mark.django_db


def test_wrong_second_factor_codes_lock_the_step_even_for_theauthenticator_code(client, staff_user, shared_cache):
    response = client.post(reverse("account_login"), {"login": staff_user.email, "password": "x-staff-password-1"})
    assert response["Location"] == reverse("mfa_authenticate")
    for _ in range(5):
        response = client.post(reverse("mfa_authenticate"), {"code": "000000"})
        assert response.status_code == 200
    response = client.post(reverse("mfa_authenticate"), {"code": authenticator_code(staff_user.totp_secret)})
    assert response.status_code == 200  # the form again, not a redirect into the site
    assert "Too many failed login attempts" in response.content.decode()
    assert client.get("/admin/").status_code == 302


def test_a_fresh_client_cannot_keep_guessing_codes_for_the_same_account(staff_user):
    # The lock is on the account, not the session or the address it came from.
    for n in range(6):
        guesser = Client(REMOTE_ADDR=f"203.0.113.{n + 1}")
        guesser.post(reverse("account_login"), {"login": staff_user.email, "password": "x-staff-password-1"})
        response = guesser.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert "Too many failed login attempts" in response.content.decode()


def test_wrong_passwords_for_one_account_lock_it_whatever_the_client_address(settings):
    user = UserFactory()
    for n in range(5):
        Client(REMOTE_ADDR=f"198.51.100.{n + 1}").post(
            reverse("account_login"), {"login": user.email, "password": "wrong"}
        )
    response = Client(REMOTE_ADDR="198.51.100.77").post(
        reverse("account_login"), {"login": user.email, "password": PASSWORD}
    )
    assert response.status_code == 200
    assert "Too many failed login attempts" in response.content.decode()


def test_reset_mails_are_capped_per_address_and_per_client(client, stopped_clock):
    user = UserFactory()
    url = reverse("account_reset_password")
    answers = [Client(REMOTE_ADDR=f"192.0.2.{n + 1}").post(url, {"email": user.email}).status_code for n in range(6)]
    assert answers[:3] == [302, 302, 302]
    assert set(answers[3:]) == {429}
    assert len(mail.outbox) == 3

    mail.outbox.clear()
    answers = [client.post(url, {"email": f"someone{n}@example.com"}).status_code for n in range(8)]
    assert answers.count(429) == 3
    assert b"Slow down a little" in client.post(url, {"email": "x@example.com"}).content


# --- The client address -----------------------------------------------------------------

factory = RequestFactory()


def _ip(remote: str | None = "10.0.0.9", xff: str | None = None) -> str:
    meta = {}
    if xff is not None:
        meta["HTTP_X_FORWARDED_FOR"] = xff
    request = factory.get("/", **meta)
    if remote is None:
        del request.META["REMOTE_ADDR"]
    else:
        request.META["REMOTE_ADDR"] = remote
    return client_ip(request)


def test_without_trusted_proxies_the_peer_is_the_client_and_the_header_is_ignored(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    assert _ip("203.0.113.5", "198.51.100.7") == "203.0.113.5"


def test_behind_one_proxy_the_rightmost_forwarded_address_is_the_client(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    assert _ip(xff="198.51.100.7") == "198.51.100.7"
    # Whatever the client wrote itself is further left and changes nothing.
    assert _ip(xff="6.6.6.6, 198.51.100.7") == "198.51.100.7"
    assert _ip(xff="not-an-ip, 1.2.3.4, 198.51.100.7") == "198.51.100.7"


def test_behind_two_proxies_the_second_from_the_right_is_the_client(settings):
    settings.TRUSTED_PROXY_COUNT = 2
    assert _ip(xff="198.51.100.7, 10.0.0.1") == "198.51.100.7"
    assert _ip(xff="6.6.6.6, 198.51.100.7, 10.0.0.1") == "198.51.100.7"


@pytest.mark.parametrize("xff", [None, "", "not-an-ip", "198.51.100.7, ", ",,", "\x00", "1.2.3.4:99999x", "é" * 5000])
def test_malformed_or_missing_headers_fall_back_to_the_peer(settings, xff):
    settings.TRUSTED_PROXY_COUNT = 1
    assert _ip("10.0.0.9", xff) == "10.0.0.9"


def test_a_peer_outside_the_trusted_networks_cannot_forge_the_header(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.TRUSTED_PROXY_NETWORKS = ["10.0.0.0/8"]
    assert _ip("10.1.2.3", "198.51.100.7") == "198.51.100.7"
    assert _ip("203.0.113.9", "198.51.100.7") == "203.0.113.9"


def test_a_missing_peer_address_is_counted_not_a_500(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    assert _ip(None) == UNKNOWN


def test_behind_a_load_balancer_one_client_does_not_lock_out_the_others(client, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.RATELIMIT_LOGIN = "2/m"
    data = {"login": "x@example.com", "password": "wrong"}
    via_lb = {"REMOTE_ADDR": "10.0.0.2"}
    for rotated in ("1.1.1.1", "2.2.2.2", "3.3.3.3"):
        # The attacker rotates its own leftmost entry; the balancer appends the real address.
        last = client.post(reverse("account_login"), data, HTTP_X_FORWARDED_FOR=f"{rotated}, 198.51.100.66", **via_lb)
    assert last.status_code == 429
    other = client.post(reverse("account_login"), data, HTTP_X_FORWARDED_FOR="198.51.100.8", **via_lb)
    assert other.status_code == 200


@pytest.mark.parametrize("xff", ["198.51.100.7, 10.0.0.1", "not-an-ip", ""])
def test_odd_forwarded_headers_never_answer_500(settings, xff):
    settings.TRUSTED_PROXY_COUNT = 1
    client = Client(raise_request_exception=False)
    response = client.post(reverse("account_login"), {"login": "x@example.com", "password": "wrong"},
                           HTTP_X_FORWARDED_FOR=xff)  # fmt: skip
    assert response.status_code == 200
