"""One signup bonus per deliverable mailbox, however the address is spelled: Unicode (NFKC) and
IDNA variants of the domain, a quoted local part, case and a trailing dot are one inbox, so
they are one account and one bonus. An address that cannot be brought to one spelling safely
is refused with a message."""

from __future__ import annotations

import re
import unicodedata

import idna
import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.models import User
from accounts.services import user_delete
from accounts.tests.factories import PASSWORD
from billing.mailbox import mailbox_hash
from billing.models import LedgerEntry
from billing.pricing import SIGNUP_CREDITS
from billing.services import balance_of
from core.addresses import UnsafeAddress, email_canonical

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_limits(settings):
    # Many sign-ups from one address in a few seconds: the limits are tested elsewhere.
    settings.ACCOUNT_RATE_LIMITS = False
    settings.RATELIMIT_ENABLE = False


def sign_up_and_confirm(address: str, capture) -> tuple[Client, str]:
    """Sign up with `address` and follow the mailed link, as the person would; the page text."""
    client = Client()
    mail.outbox.clear()
    with capture(execute=True):
        page = client.post(
            reverse("account_signup"), {"email": address, "password1": PASSWORD, "password2": PASSWORD}, follow=True
        ).content.decode()
    for message in mail.outbox:
        link = re.search(r"(/accounts/confirm-email/[^\s]+/)", message.body)
        if link:
            with capture(execute=True):
                client.post(link.group(1))
    return client, page


def bonuses() -> int:
    return LedgerEntry.objects.filter(kind="signup_bonus").count()


FULLWIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})

VARIANTS = [
    '"frank"@example.com',
    "frank@ｅxample.com",
    "frank@ＥＸＡＭＰＬＥ.ＣＯＭ",
    "frank@exａmpｌe.com",
    "ｆｒａｎｋ＠ｅｘａｍｐｌｅ．ｃｏｍ",
    "FRANK@example.com.",
    '"fr\\ank"@Example.com',
]


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_spelling_of_the_same_mailbox_is_neither_a_second_account_nor_a_second_bonus(
    variant, django_capture_on_commit_callbacks
):
    sign_up_and_confirm("frank@example.com", django_capture_on_commit_callbacks)
    frank = User.objects.get(email="frank@example.com")
    assert balance_of(frank) == SIGNUP_CREDITS

    sign_up_and_confirm(variant, django_capture_on_commit_callbacks)
    assert User.objects.count() == 1
    assert bonuses() == 1


@pytest.mark.parametrize("variant", VARIANTS)
def test_deleting_the_account_and_signing_up_with_another_spelling_earns_nothing(
    variant, django_capture_on_commit_callbacks
):
    sign_up_and_confirm("frank@example.com", django_capture_on_commit_callbacks)
    user_delete(user=User.objects.get(email="frank@example.com"))

    sign_up_and_confirm(variant, django_capture_on_commit_callbacks)
    # A new account, stored in its one spelling and without a bonus (spellings the address
    # field refuses outright, like a fullwidth local part, make none).
    for again in User.objects.filter(deleted_at__isnull=True):
        assert again.email == "frank@example.com"
        assert balance_of(again) == 0
    assert bonuses() == 1


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ('"frank@home"@example.com', "before the @"),
        ("frank@[192.0.2.1]", "at a domain name"),
        ("frank@xn--zz.example", "not a domain name we can send mail to"),
    ],
)
def test_an_address_that_cannot_be_spelled_one_way_safely_is_refused_with_a_message(
    address, message, django_capture_on_commit_callbacks
):
    _, page = sign_up_and_confirm(address, django_capture_on_commit_callbacks)
    assert message in page
    assert not User.objects.exists()
    assert mail.outbox == []


def test_a_local_part_outside_ascii_is_refused_whichever_way_it_arrives():
    # The sign-up form's own check refuses these first; a Google address could bring one.
    with pytest.raises(UnsafeAddress, match="only Latin letters"):
        email_canonical("jöhn@example.com")


# --- The property: every spelling of one mailbox has one key --------------------------------

ASCII_LABEL = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)
UNICODE_LABEL = st.sampled_from(["bücher", "münchen", "straße", "δοκιμή", "пример", "例え"])
LOCAL = st.from_regex(r"[a-z0-9][a-z0-9_]{0,10}(\.[a-z0-9]{1,5})?", fullmatch=True)


def upper(c: str) -> str:
    # A change of case, where there is one letter for one: "ß" in capitals is "SS", another name.
    return c.upper() if len(c.upper()) == 1 and c.upper().lower() == c else c


@st.composite
def mailbox_and_spelling(draw) -> tuple[str, str]:
    local = draw(LOCAL)
    labels = draw(st.lists(st.one_of(ASCII_LABEL, UNICODE_LABEL), min_size=1, max_size=2))
    domain = ".".join([*labels, draw(st.sampled_from(["com", "example", "de"]))])
    plain = f"{local}@{domain}"

    # A spelling the same inbox receives: each change below is one a mail server folds.
    spelled_local = local
    if draw(st.booleans()):
        spelled_local = "".join(upper(c) if draw(st.booleans()) else c for c in spelled_local)
    if draw(st.booleans()):
        spelled_local = f'"{spelled_local}"'
    spelled_domain = domain
    if draw(st.booleans()):
        spelled_domain = "".join(upper(c) if draw(st.booleans()) else c for c in spelled_domain)
    if draw(st.booleans()):  # fullwidth forms, letter by letter (NFKC folds them back)
        spelled_domain = "".join(c.translate(FULLWIDTH) if draw(st.booleans()) else c for c in spelled_domain)
    if draw(st.booleans()):  # the ASCII ("xn--") form of the internationalised labels
        spelled_domain = idna.encode(unicodedata.normalize("NFKC", spelled_domain), uts46=True).decode()
    if draw(st.booleans()):
        spelled_domain += "."
    if draw(st.booleans()):  # +tag: the same inbox (already folded for the bonus)
        spelled_local = spelled_local.replace('"', "") + "+" + draw(ASCII_LABEL)
    return plain, f"{spelled_local}@{spelled_domain}"


@given(mailbox_and_spelling())
@hypothesis_settings(max_examples=300, deadline=None)
def test_every_spelling_of_a_mailbox_has_the_mailbox_key_of_its_plain_form(pair):
    plain, spelling = pair
    assert mailbox_hash(spelling) == mailbox_hash(plain), spelling


@given(mailbox_and_spelling())
@hypothesis_settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_signing_up_with_any_spelling_of_a_mailbox_that_had_its_bonus_earns_nothing(
    django_capture_on_commit_callbacks, pair
):
    plain, spelling = pair
    sign_up_and_confirm(plain, django_capture_on_commit_callbacks)
    before = bonuses()
    sign_up_and_confirm(spelling, django_capture_on_commit_callbacks)
    assert bonuses() == before
