"""The grant-or-correct form takes only amounts the ledger can hold and users it can name, and
nobody on the staff adjusts their own balance: a second staff member does it, and the attempt
is in the staff trail."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import StaffAction
from accounts.tests.factories import UserFactory
from billing.models import LedgerEntry
from billing.services import ADJUSTMENT_MAX_CREDITS, LedgerError, balance_of, credits_adjust

pytestmark = pytest.mark.django_db

URL = reverse("admin:billing_adjust_credits")


def token(staff_client: Client, url: str) -> str:
    page = staff_client.get(url).content.decode()
    return re.search(r'name="token" value="([0-9a-f-]+)"', page).group(1)


@pytest.mark.parametrize("amount", [2**63, 10**30, -(2**63), ADJUSTMENT_MAX_CREDITS + 1, "1e6"])
def test_an_amount_the_ledger_cannot_hold_is_a_form_error(staff_client, amount):
    staff_client.raise_request_exception = False
    customer = UserFactory()
    url = f"{URL}?users={customer.pk}"
    response = staff_client.post(url, {"amount": amount, "memo": "Goodwill", "token": token(staff_client, url)})
    assert response.status_code == 200
    page = response.content.decode()
    assert "errorlist" in page and "amount" in page
    assert not LedgerEntry.objects.exists()


@pytest.mark.parametrize(
    "users", ["²", "1²", "9" * 5000, ",".join(["1"] * 5000), "99999999999999999999", "-1", "１", "0x10", "%00"]
)
def test_odd_user_lists_answer_with_a_message_not_a_500(staff_client, users):
    staff_client.raise_request_exception = False
    response = staff_client.get(URL, {"users": users})
    assert response.status_code in (200, 302)
    assert not LedgerEntry.objects.exists()


def test_the_largest_allowed_correction_is_written(staff_client):
    customer = UserFactory()
    url = f"{URL}?users={customer.pk}"
    staff_client.post(url, {"amount": ADJUSTMENT_MAX_CREDITS, "memo": "Migration", "token": token(staff_client, url)})
    assert balance_of(customer) == ADJUSTMENT_MAX_CREDITS


def test_staff_cannot_grant_their_own_account_and_the_attempt_is_recorded(staff_client):
    me = staff_client.staff
    url = f"{URL}?users={me.pk}"
    response = staff_client.post(
        url, {"amount": 5_000, "memo": "Treat myself", "token": token(staff_client, url)}, follow=True
    )
    assert "another staff member" in response.content.decode()
    assert balance_of(me) == 0
    assert not LedgerEntry.objects.exists()
    refused = StaffAction.objects.get(staff=me, user=me)
    assert refused.kind == StaffAction.Kind.REFUSED and refused.reason == "Treat myself"
    assert refused.details["amount"] == 5_000

    # A second staff member may do it, in their own name.
    colleague = UserFactory(is_staff=True, is_superuser=True)
    credits_adjust(user=me, amount=5_000, memo="Approved by the lead", staff=colleague)
    assert balance_of(me) == 5_000


def test_the_service_refuses_an_adjustment_to_ones_own_account_too(db):
    staff = UserFactory(is_staff=True)
    with pytest.raises(LedgerError):
        credits_adjust(user=staff, amount=100, memo="Mine", staff=staff)
    with pytest.raises(ValueError):
        credits_adjust(user=UserFactory(), amount=ADJUSTMENT_MAX_CREDITS + 1, memo="Too much")
    assert not LedgerEntry.objects.exists()
