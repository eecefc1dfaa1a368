"""A paid prediction is never thrown away nor adopted twice.

Creates are cut after Replicate made the prediction (the answer lost, or too late for the
client), refused (500, 429), tokens belong to two accounts, the prediction list is missing, and
the database connection is cut while the id is saved. Every job ends final with one charge, at
most one refund, exactly its own prediction, and a clean `reconcile`.

Seeded: FAULT_SEED=<n> replays a failing run.
"""

from __future__ import annotations

import os
import random
import time

import psycopg
import pytest
from django.db import connection
from django_q.conf import Conf

from fakes.replicate import FakeReplicate
from generation.models import Job
from generation.providers.replicate import token_fingerprint
from generation.services import job_create, job_run, predictions_poll, sweep_stuck_jobs
from generation.tests.factories import replicate_model
from tests.concurrency import jobs_run_in_threads
from tests.faults.settled import assert_every_job_settled
from tests.pg import conninfo

pytestmark = pytest.mark.django_db(transaction=True)
SEED = int(os.environ.get("FAULT_SEED", "20261201"))
TOKENS = {"r8_account_a": "a", "r8_account_b": "b"}


@pytest.fixture
def two_accounts(settings):
    # Two tokens of two different accounts, in rotation: a prediction is only visible to the
    # token that made it (another account's token gets 404, and its list does not show it).
    with FakeReplicate(tokens=set(TOKENS), accounts=TOKENS, predict_seconds=0.3) as fake:
        settings.REPLICATE_API_TOKENS = list(TOKENS)
        settings.REPLICATE_BASE_URL = fake.url
        settings.REPLICATE_CREATE_WAIT = 1
        settings.REPLICATE_TIMEOUT = 1
        settings.REPLICATE_WEBHOOK_SECRET = fake.webhook_secret
        settings.PROVIDER_MAX_RETRIES = 3
        yield fake


def drive_until_settled(seconds: float = 60) -> None:
    """What the cluster does meanwhile: the sweeper each round (its re-runs run inline), the
    poller between rounds."""
    until = time.monotonic() + seconds
    while time.monotonic() < until and Job.objects.exclude(status__in=Job.FINAL_STATUSES).exists():
        sweep_stuck_jobs()
        predictions_poll(max_seconds=1, idle_seconds=0)
        time.sleep(0.2)


def test_creates_cut_after_the_prediction_was_made_are_found_by_the_job_never_paid_twice(
    creator, two_accounts, monkeypatch
):
    rng = random.Random(SEED)
    fake = two_accounts
    model = replicate_model(timeout_seconds=90)
    # Identical inputs on purpose: matching by inputs would hand one prediction to two jobs.
    jobs = [job_create(user=creator, model=model, prompt="same prompt", aspect_ratio="square") for _ in range(16)]
    # Seeded trouble for the coming creates: answers lost after the work, answers too late
    # for the client's timeout (the work done), and refusals.
    for _ in range(10):
        trouble = rng.choice(["drop", "late", "500", "429"])
        if trouble == "drop":
            fake.drop_next_creates(1)
        elif trouble == "late":
            fake.delay_next(1, 1.5)
        else:
            fake.fail_next(1, status=int(trouble))
    monkeypatch.setattr(Conf, "SYNC", True)  # what the sweeper and the poller enqueue runs inline

    jobs_run_in_threads(jobs)
    drive_until_settled()

    assert_every_job_settled(fake, note=f"seed {SEED}")
    assert set(Job.objects.values_list("status", flat=True)) == {"succeeded"}
    assert fake.created_count == len(jobs)
    # Each job names (by fingerprint) the token that made its prediction; both were used.
    by_fingerprint = {token_fingerprint(token): token for token in TOKENS}
    for job in Job.objects.all():
        assert fake.predictions[job.prediction_id].token == by_fingerprint[job.provider_token]
    assert len(set(Job.objects.values_list("provider_token", flat=True))) == 2


def test_without_the_prediction_list_a_lost_create_is_adopted_from_its_webhook(
    creator, two_accounts, monkeypatch, settings, live_server
):
    # A provider without the list (it answers 404): looking is retried, never final before the
    # deadline, and the prediction's webhook, which names its job, brings it home.
    fake = two_accounts
    fake.list_enabled = False
    settings.PUBLIC_BASE_URL = live_server.url
    model = replicate_model(timeout_seconds=90)
    jobs = [job_create(user=creator, model=model, prompt=f"webhooked {n}", aspect_ratio="square") for n in range(4)]
    fake.drop_next_creates(2)
    monkeypatch.setattr(Conf, "SYNC", True)

    jobs_run_in_threads(jobs, threads=2)
    fake.wait_for_webhooks(count=4, timeout=15)
    drive_until_settled(20)

    assert_every_job_settled(fake, note="no list")
    assert set(Job.objects.values_list("status", flat=True)) == {"succeeded"}
    assert fake.created_count == 4
    assert fake.list_calls > 0  # the lost creates were looked for, and the 404 was not final


def test_a_database_connection_cut_while_saving_the_prediction_id_is_retried_not_failed(
    creator, two_accounts, monkeypatch
):
    fake = two_accounts
    model = replicate_model(timeout_seconds=60)
    jobs = [job_create(user=creator, model=model, prompt=f"cut {n}", aspect_ratio="square") for n in range(3)]
    db = connection.settings_dict
    dsn = conninfo(db)
    victim: dict[str, int] = {}
    cuts = []
    original = FakeReplicate._create

    def create_then_cut(self, body, **kwargs):
        reply = original(self, body, **kwargs)
        # The prediction exists; now the worker's database connection dies before it saves the id.
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [victim["pid"]])
        cuts.append(1)
        return reply

    monkeypatch.setattr(FakeReplicate, "_create", create_then_cut)
    monkeypatch.setattr(Conf, "SYNC", True)
    for job in jobs:
        connection.ensure_connection()
        victim["pid"] = connection.connection.info.backend_pid
        job_run(job_id=job.id)

    drive_until_settled(20)
    assert len(cuts) == 3
    assert_every_job_settled(fake, note="db cut")
    assert set(Job.objects.values_list("status", flat=True)) == {"succeeded"}
    assert fake.created_count == 3
