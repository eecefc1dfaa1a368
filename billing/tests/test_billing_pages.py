from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from accounts.tests.factories import UserFactory
from billing.models import LedgerEntry
from billing.services import balance_of, credits_charge, credits_grant

pytestmark = pytest.mark.django_db


def test_the_navigation_shows_the_balance(client):
    user = UserFactory()
    credits_grant(user=user, amount=12_345, key="purchase:nav")
    client.force_login(user)
    page = client.get(reverse("profile")).content.decode()
    assert '<span class="balance-amount" id="header-balance">12,345</span> credits' in page


def test_billing_page_shows_the_history_newest_first_and_paginates(client):
    user = UserFactory()
    credits_grant(user=user, amount=30_000, key="purchase:hist")
    for n in range(30):
        credits_charge(user=user, amount=500, key=f"charge:h{n}", reference=f"job:h{n}", memo=f"Image #{n}")
    client.force_login(user)
    first = client.get(reverse("billing")).content.decode()
    assert "Image #29" in first and "Image #0<" not in first
    assert first.index("Image #29") < first.index("Image #28")
    older = re.search(r'href="\?before=([0-9_]+)" rel="next">Older', first).group(1)
    second = client.get(reverse("billing"), {"before": older}).content.decode()
    assert "+30,000" in second and "Purchase" in second and "Image #4<" in second and "Image #5<" not in second
    assert 'rel="next"' not in second  # the oldest page has no "Older" link
    newer = re.search(r'href="\?after=([0-9_]+)" rel="prev">Newer', second).group(1)
    back = client.get(reverse("billing"), {"after": newer}).content.decode()
    assert "Image #29" in back and "Image #5<" in back and "Image #4<" not in back


def test_history_pages_hold_when_entries_share_a_timestamp_and_a_bad_cursor_shows_the_newest(client, time_machine):
    user = UserFactory()
    time_machine.move_to("2026-06-01 12:00:00", tick=False)  # every entry at the same instant: the id decides
    credits_grant(user=user, amount=30_000, key="purchase:same")
    for n in range(29):
        credits_charge(user=user, amount=1, key=f"charge:s{n}", memo=f"Same #{n}")
    client.force_login(user)
    seen = []
    page = client.get(reverse("billing")).content.decode()
    while True:
        seen += re.findall(r"Same #(\d+)<", page)
        match = re.search(r'href="\?before=([0-9_]+)" rel="next"', page)
        if not match:
            break
        page = client.get(reverse("billing"), {"before": match.group(1)}).content.decode()
    assert seen == [str(n) for n in range(28, -1, -1)]  # each once, newest first, none skipped
    garbled = client.get(reverse("billing"), {"before": "not-a-cursor"}).content.decode()
    assert "Same #28<" in garbled


def test_a_low_balance_gets_a_notice(client):
    from generation.tests.factories import local_model

    local_model(credit_cost=500)  # the cheapest thing one can make
    user = UserFactory()
    credits_grant(user=user, amount=499, key="purchase:low")
    client.force_login(user)
    assert "You are running low" in client.get(reverse("billing")).content.decode()
    credits_grant(user=user, amount=1, key="purchase:low-2")
    assert "You are running low" not in client.get(reverse("billing")).content.decode()


def test_users_only_ever_see_their_own_history(client):
    me, other = UserFactory(), UserFactory()
    credits_grant(user=other, amount=777_777, key="purchase:other")
    client.force_login(me)
    page = client.get(reverse("billing"), {"user": other.pk, "account": other.pk}).content.decode()
    assert "777,777" not in page


def test_non_staff_cannot_reach_the_admin(client):
    user = UserFactory()
    client.force_login(user)
    for url in ("/admin/", "/admin/billing/ledgerentry/", reverse("admin:billing_adjust_credits")):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


def _grant_form_token(staff_client, url: str) -> str:
    # The hidden token the form is shown with; each opening of the form draws a new one.
    page = staff_client.get(url).content.decode()
    return re.search(r'name="token" value="([0-9a-f-]+)"', page).group(1)


# `staff_client` (a superuser with a second factor, as the back office requires) is in the root conftest.


def test_staff_grant_and_correct_credits_in_the_admin_with_a_memo(staff_client):
    user = UserFactory()
    url = reverse("admin:billing_adjust_credits") + f"?users={user.pk}"

    refused = staff_client.post(url, {"amount": 500, "memo": "  ", "token": _grant_form_token(staff_client, url)})
    assert refused.status_code == 200
    assert balance_of(user) == 0

    staff_client.post(
        url, {"amount": 500, "memo": "Ticket 42: failed render", "token": _grant_form_token(staff_client, url)}
    )
    staff_client.post(
        url,
        {"amount": -200, "memo": "Ticket 43: granted twice by mistake", "token": _grant_form_token(staff_client, url)},
    )
    assert balance_of(user) == 300
    entries = LedgerEntry.objects.filter(account__user=user).order_by("created_at", "id")
    assert [(e.kind, e.amount, e.actor, e.memo) for e in entries] == [
        ("adjustment", 500, staff_client.staff, "Ticket 42: failed render"),
        ("adjustment", -200, staff_client.staff, "Ticket 43: granted twice by mistake"),
    ]

    # A correction below zero is refused and says so.
    token = _grant_form_token(staff_client, url)
    response = staff_client.post(url, {"amount": -1_000, "memo": "too much", "token": token}, follow=True)
    assert "Not enough credits" in response.content.decode()
    assert balance_of(user) == 300


def test_a_double_submit_of_the_staff_grant_form_grants_once(staff_client):
    users = UserFactory.create_batch(2)
    url = reverse("admin:billing_adjust_credits") + f"?users={users[0].pk},{users[1].pk}"
    form = {"amount": 500, "memo": "Ticket 44: sorry", "token": _grant_form_token(staff_client, url)}
    first = staff_client.post(url, form)
    second = staff_client.post(url, form)
    assert first.status_code == second.status_code == 302
    for user in users:
        assert balance_of(user) == 500
        assert LedgerEntry.objects.filter(account__user=user).count() == 1
    # Opened again, the form is a new grant.
    staff_client.post(url, {**form, "token": _grant_form_token(staff_client, url)})
    assert [balance_of(user) for user in users] == [1_000, 1_000]


def test_a_staff_grant_without_the_forms_token_changes_nothing(staff_client):
    user = UserFactory()
    url = reverse("admin:billing_adjust_credits") + f"?users={user.pk}"
    response = staff_client.post(url, {"amount": 500, "memo": "Ticket 45"})
    assert response.status_code == 200
    assert "out of date" in response.content.decode()
    assert balance_of(user) == 0


def test_the_admin_action_leads_to_the_form_for_the_chosen_accounts(staff_client):
    users = UserFactory.create_batch(2)
    for user in users:
        credits_grant(user=user, amount=100, key=f"purchase:act{user.pk}")
    accounts = [user.credit_account.pk for user in users]
    response = staff_client.post(
        reverse("admin:billing_creditaccount_changelist"),
        {"action": "adjust_credits", "_selected_action": accounts},
    )
    assert response.status_code == 302
    form = staff_client.get(response["Location"]).content.decode()
    assert all(user.email in form for user in users)


def test_ledger_entries_are_read_only_in_the_admin_even_for_superusers(staff_client):
    user = UserFactory()
    entry = credits_grant(user=user, amount=100, key="purchase:ro")
    assert staff_client.get(reverse("admin:billing_ledgerentry_changelist")).status_code == 200
    assert staff_client.get(reverse("admin:billing_ledgerentry_add")).status_code == 403
    assert staff_client.post(reverse("admin:billing_ledgerentry_delete", args=[entry.pk])).status_code == 403
    change = staff_client.post(reverse("admin:billing_ledgerentry_change", args=[entry.pk]), {"amount": 1_000_000})
    assert change.status_code in (200, 403)
    assert LedgerEntry.objects.get(pk=entry.pk).amount == 100
    account_page = staff_client.get(reverse("admin:billing_creditaccount_change", args=[user.credit_account.pk]))
    assert "purchase:ro" in account_page.content.decode()


def test_grant_credits_command(capsys):
    user = UserFactory(email="someone@example.com")
    call_command("grant_credits", "Someone@example.com", "1500", "--memo", "Conference prize", "--key", "prize-1")
    call_command("grant_credits", "someone@example.com", "1500", "--memo", "Conference prize", "--key", "prize-1")
    assert balance_of(user) == 1_500
    assert "+1,500 credits, balance now 1,500" in capsys.readouterr().out
    with pytest.raises(CommandError, match="No user"):
        call_command("grant_credits", "nobody@example.com", "10", "--memo", "x")
    with pytest.raises(CommandError, match="Not enough credits"):
        call_command("grant_credits", "someone@example.com", "-2000", "--memo", "oops")
    assert balance_of(user) == 1_500


def test_deleting_an_account_keeps_its_ledger_for_accounting(client, capsys):
    user = UserFactory(email="bye@example.com")
    credits_grant(user=user, amount=3_000, key=f"signup:{user.pk}", kind="signup_bonus")
    credits_charge(user=user, amount=500, key="charge:bye-1", reference="order:bye-1")
    client.force_login(user)
    client.post(reverse("delete_account"), {"confirm_email": "bye@example.com"})

    user.refresh_from_db()
    assert not user.is_active and "bye" not in user.email
    assert LedgerEntry.objects.filter(account__user=user).count() == 2
    assert balance_of(user) == 2_500
    call_command("reconcile")
    assert "All clear." in capsys.readouterr().out
