from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts.tests.totp import authenticator_code

pytestmark = pytest.mark.django_db


def _run() -> str:
    out = io.StringIO()
    call_command("demo_account", stdout=out)
    return out.getvalue()


def test_the_demo_data_has_a_staff_account_that_signs_in_to_the_admin_with_the_printed_secret(client):
    output = _run()
    secret = re.search(r"secret ([A-Z2-7]+)", output).group(1)
    assert _run().count(secret) == 2  # the same secret on every run: the authenticator app keeps working
    response = client.post(
        reverse("account_login") + "?next=/admin/", {"login": "staff@dreampixel.local", "password": "dreampixel-staff"}
    )
    assert response["Location"] == reverse("mfa_authenticate")
    code = authenticator_code(secret)
    client.post(reverse("mfa_authenticate"), {"code": code})
    assert client.get("/admin/").status_code == 200


def test_demo_accounts_are_refused_in_production(settings):
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="not in production"):
        call_command("demo_account")
