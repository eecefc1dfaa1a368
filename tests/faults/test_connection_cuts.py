"""PostgreSQL connections cut (pg_terminate_backend) while charging and while processing a
webhook: each operation happens entirely or not at all, and its retry lands once."""

from __future__ import annotations

import random
import threading
import time

import psycopg
import pytest
from django.db import DatabaseError, InterfaceError, OperationalError, connection

from accounts.tests.factories import UserFactory
from billing.models import LedgerEntry, StripeEvent
from billing.services import balance_of, credits_charge, credits_grant
from billing.tests.stripe_kit import deliver, start_checkout
from tests.pg import conninfo

pytestmark = pytest.mark.django_db(transaction=True)
SEED = 7


class Cutter:
    """Kills the watched thread's database backend at random moments."""

    def __init__(self, seed: int, *, first_cut_while_locked: str = "", lock_params: tuple = ()):
        # With first_cut_while_locked (a SELECT ... FOR UPDATE), the first cut is not left to
        # chance: the cutter holds that row lock and cuts the worker as soon as it waits for it,
        # that is, in the middle of its transaction. Random cuts follow.
        self.first_cut_sql, self.lock_params = first_cut_while_locked, lock_params
        self.armed = threading.Event()  # the worker starts once the lock is held
        if not first_cut_while_locked:
            self.armed.set()
        self.rng = random.Random(seed)
        self.pid: int | None = None
        self.cuts = 0
        self.stop = threading.Event()
        db = connection.settings_dict
        self.dsn = conninfo(db)

    def watch(self) -> None:
        # Called by the worker after (re)connecting.
        connection.ensure_connection()
        self.pid = connection.connection.info.backend_pid
        self.armed.wait(timeout=30)

    def _cut_while_locked(self, admin: psycopg.Connection) -> None:
        with psycopg.connect(self.dsn) as locker:
            locker.execute(self.first_cut_sql, self.lock_params)  # held until rollback
            self.armed.set()
            deadline = time.monotonic() + 30
            while not self.stop.is_set() and time.monotonic() < deadline:
                waiting = admin.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'", [self.pid]
                ).fetchone()
                if waiting:
                    admin.execute("SELECT pg_terminate_backend(%s)", [self.pid])
                    self.cuts += 1
                    break
                time.sleep(0.001)
            locker.rollback()

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as admin:
            if self.first_cut_sql:
                while self.pid is None and not self.stop.is_set():
                    time.sleep(0.001)
                self._cut_while_locked(admin)
            while not self.stop.is_set():
                time.sleep(self.rng.uniform(0.002, 0.03))
                if self.pid is not None:
                    admin.execute("SELECT pg_terminate_backend(%s)", [self.pid])
                    self.cuts += 1

    def __enter__(self):
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=10)


def retry_until_it_lands(cutter: Cutter, operation, attempts: int = 200):
    for _ in range(attempts):
        try:
            cutter.watch()
            return operation()
        except (OperationalError, InterfaceError, DatabaseError):
            connection.close()  # a cut connection: reconnect and retry with the same key
    raise AssertionError("the operation never landed")


def test_charges_cut_mid_transaction_land_exactly_once():
    user = UserFactory()
    most = 3_000
    credits_grant(user=user, amount=most * 7, key="purchase:cuts")
    results = {}

    def worker():
        # At least 100 charges, and on until the connection has been cut more than ten times:
        # the cuts come at random moments in time, so a faster charge meets fewer of them.
        with Cutter(SEED) as cutter:
            made = 0
            while made < 100 or (cutter.cuts <= 10 and made < most):
                results[made] = retry_until_it_lands(
                    cutter, lambda n=made: credits_charge(user=user, amount=7, key=f"charge:cut-{n}")
                )
                made += 1
            results["cuts"], results["made"] = cutter.cuts, made
        connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive()
    connection.close()
    assert results["cuts"] > 10, "the connection was hardly ever cut: the test proved nothing"
    made = results["made"]
    charges = LedgerEntry.objects.filter(account__user=user, kind="charge")
    assert charges.count() == made
    assert sorted(charges.values_list("idempotency_key", flat=True)) == sorted(f"charge:cut-{n}" for n in range(made))
    amounts = LedgerEntry.objects.filter(account__user=user).values_list("amount", flat=True)
    assert balance_of(user) == (most - made) * 7 == sum(amounts)


@pytest.mark.usefixtures("sync_queue")
def test_a_webhook_cut_while_processing_is_retried_and_grants_once(pack, buyer, stripe_fake):
    from django.test import Client

    session_id = start_checkout(buyer, pack)
    event = stripe_fake.complete_checkout(session_id)
    outcomes = []

    def worker():
        client = Client(raise_request_exception=False)
        # Fulfilment locks the Checkout session's row: the first delivery is cut while it waits.
        locked = "SELECT 1 FROM billing_checkoutsession WHERE session_id = %s FOR UPDATE"
        with Cutter(SEED + 1, first_cut_while_locked=locked, lock_params=(session_id,)) as cutter:
            for _ in range(200):  # Stripe retries until it gets a 2xx
                cutter.watch()
                try:
                    status = deliver(client, event).status_code
                except (OperationalError, InterfaceError, DatabaseError):
                    status = 500
                    connection.close()
                outcomes.append(status)
                if status == 200:
                    break
                connection.close()
        connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(timeout=120)
    connection.close()
    assert outcomes[-1] == 200
    assert 500 in outcomes, "no delivery was cut: the test proved nothing"
    assert LedgerEntry.objects.filter(idempotency_key=f"purchase:{session_id}").count() == 1
    assert balance_of(buyer) == pack.credits
    assert StripeEvent.objects.get(event_id=event["id"]).status == StripeEvent.Status.PROCESSED
    # And once more, as Stripe may: nothing more.

    assert deliver(Client(), event).status_code == 200
    assert balance_of(buyer) == pack.credits
