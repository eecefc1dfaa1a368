"""The local payments sandbox, as `make dev` runs it: scripts/dev_payments.py (the fake Stripe with
its checkout page, portal and dashboard) beside the site, tried in Chromium the way a newcomer
would: a pack with the test card (and a declined card first), a plan, the portal, a refund."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from unittest import mock

import httpx
import pytest
from django.conf import settings as django_settings
from django_q.conf import Conf

from accounts.tests.factories import PASSWORD, UserFactory
from billing.models import CreditPack, Plan
from billing.services import balance_of
from generation.tests.test_qcluster import ROOT, database_url

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SANDBOX_SECRET = "whsec_dreampixel_payments_sandbox"  # what settings give the sandbox


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def catalogue(db):
    # What billing's migrations seed (a transactional test starts from empty tables).
    pack = CreditPack.objects.create(
        name="Starter", credits=5_000, price_cents=500, stripe_price_id="price_sandbox_starter"
    )
    plan = Plan.objects.create(name="Plus", credits=15_000, price_cents=1_200, stripe_price_id="price_sandbox_plus")
    return pack, plan


@pytest.fixture
def sandbox(catalogue, live_server, settings, tmp_path):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    # The site as `make dev` configures it with PAYMENTS_SANDBOX=true (dreampixel/settings.py).
    settings.PAYMENTS_SANDBOX = True
    settings.PAYMENTS_SANDBOX_URL = url
    settings.STRIPE_SECRET_KEY = "sk_test_payments_sandbox"
    settings.STRIPE_WEBHOOK_SECRET = SANDBOX_SECRET
    settings.STRIPE_API_BASE = url
    policy = settings.CONTENT_SECURITY_POLICY_REPORT_ONLY
    directives = {**policy["DIRECTIVES"], "form-action": [*policy["DIRECTIVES"]["form-action"], url]}
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {**policy, "DIRECTIVES": directives}
    env = {
        **os.environ, "PAYMENTS_SANDBOX": "true", "PAYMENTS_SANDBOX_URL": url, "DATABASE_URL": database_url(),
        "DREAMPIXEL_DEV_URL": live_server.url, "DREAMPIXEL_ENV": "development",
    }  # fmt: skip
    log = tmp_path / "sandbox.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "scripts/dev_payments.py"], cwd=ROOT, env=env, start_new_session=True,
            stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        os.killpg(process.pid, signal.SIGTERM)
        pytest.fail("the sandbox did not start: " + log.read_text()[-2000:])
    # The webhook's tasks run inline in the site (the worker's part), so each step is settled.
    with mock.patch.object(Conf, "SYNC", True):
        yield url
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=10)


def sign_in(page, user) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.stack button[type=submit]")
    page.wait_for_url("**/create/")


def test_a_newcomer_buys_a_pack_takes_a_plan_manages_it_and_sees_a_refund_offline(page, sandbox, catalogue):
    pack, plan = catalogue
    buyer = UserFactory()  # with a verified address already
    sign_in(page, buyer)

    page.goto("/billing/")
    assert "Payments sandbox" in page.content()
    assert "Payments are not configured" not in page.content()

    # A pack: the declined test card first, then the paying one.
    page.click(f"form[action='/billing/buy/pack/{pack.pk}/'] button")
    page.wait_for_url(f"{sandbox}/c/pay/**")
    assert "Payments sandbox" in page.content()
    page.fill("#card", "4000 0000 0000 0002")
    page.click("button:has-text('Pay')")
    assert "Your card was declined" in page.content()
    assert balance_of(buyer) == 0
    page.fill("#card", "4242 4242 4242 4242")
    page.click("button:has-text('Pay')")
    page.wait_for_url("**/billing/checkout/success/**")
    assert balance_of(buyer) == pack.credits

    # A plan, then the portal: cancel it at the period's end.
    page.goto("/billing/")
    page.click(f"form[action='/billing/buy/plan/{plan.pk}/'] button")
    page.wait_for_url(f"{sandbox}/c/pay/**")
    page.click("button:has-text('Pay')")
    page.wait_for_url("**/billing/checkout/success/**")
    assert balance_of(buyer) == pack.credits + plan.credits
    page.goto("/billing/")
    page.click("button:has-text('Manage plan and invoices')")
    page.wait_for_url(f"{sandbox}/p/session/**")
    page.click("button:has-text('Cancel my plan')")
    assert "ends at the period's end" in page.content()
    page.click("text=Return to Dream Pixel")
    page.wait_for_url("**/billing/")
    # The sandbox sends the change as a webhook, as Stripe does: it may land a moment later.
    deadline = time.monotonic() + 15
    while "end" not in page.locator("#plan-status").inner_text().lower() and time.monotonic() < deadline:
        time.sleep(0.3)
        page.reload()
    assert "end" in page.locator("#plan-status").inner_text().lower()

    # A refund from the sandbox's dashboard, as staff would from Stripe's: the credits go back.
    page.goto(f"{sandbox}/")
    page.locator("tr", has_text=buyer.email).filter(has_text=f"{pack.price_cents / 100:.2f}").locator(
        "button:has-text('Refund')"
    ).first.click()
    deadline = time.monotonic() + 10
    while balance_of(buyer) != plan.credits and time.monotonic() < deadline:
        time.sleep(0.2)
    assert balance_of(buyer) == plan.credits
    assert django_settings.PAYMENTS_SANDBOX
