from __future__ import annotations

import json
import logging

import pytest

from core.logging import ContextFilter, bound
from generation.tasks import run_job

pytestmark = pytest.mark.django_db


def test_each_response_carries_a_request_id_and_keeps_a_good_incoming_one(client):
    generated = client.get("/healthz")["X-Request-ID"]
    assert len(generated) == 32
    assert client.get("/healthz", HTTP_X_REQUEST_ID="lb-req-12345678")["X-Request-ID"] == "lb-req-12345678"
    assert client.get("/healthz", HTTP_X_REQUEST_ID="x")["X-Request-ID"] != "x"


def test_json_log_lines_carry_request_user_and_job_ids():
    from pythonjsonlogger.json import JsonFormatter

    formatter = JsonFormatter("%(levelname)s %(name)s %(message)s %(request_id)s %(user_id)s %(job_id)s")
    record = logging.LogRecord("generation.services", logging.INFO, __file__, 1, "job created", (), None)
    with bound(request_id="r-1", user_id=7, job_id="j-1"):
        ContextFilter().filter(record)
    line = json.loads(formatter.format(record))
    assert (line["request_id"], line["user_id"], line["job_id"], line["message"]) == ("r-1", "7", "j-1", "job created")


def test_a_task_logs_with_its_job_id(caplog, creator_with_job):
    job = creator_with_job
    with caplog.at_level(logging.INFO, logger="generation.services"):
        run_job(str(job.id))
    records = [r for r in caplog.records if r.name == "generation.services"]
    assert records and all(ContextFilter().filter(r) and r.job_id == str(job.id) for r in records)


@pytest.fixture
def creator_with_job(db):
    from accounts.tests.factories import UserFactory
    from billing.services import credits_grant
    from generation.services import job_create
    from generation.tests.factories import local_model

    user = UserFactory()
    credits_grant(user=user, amount=1_000, key="purchase:log")
    return job_create(user=user, model=local_model(), prompt="logged", aspect_ratio="square")


def test_request_log_lines_carry_the_signed_in_user(client):
    from accounts.tests.factories import UserFactory

    class Keep(logging.Handler):
        records: list[logging.LogRecord] = []

        def emit(self, record):
            self.records.append(record)

    handler = Keep()
    handler.addFilter(ContextFilter())  # as the configured handlers have it, applied at emit time
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        user = UserFactory()
        client.force_login(user)
        client.get("/no-such-page/")
    finally:
        logger.removeHandler(handler)
    record = handler.records[-1]
    assert record.user_id == str(user.pk) and len(record.request_id) == 32
