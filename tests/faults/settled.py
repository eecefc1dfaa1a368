"""What every fault test asserts at the end: each job final, charged once, refunded at most
once (exactly once when it failed), one prediction per job and no paid prediction without its
job, and a clean `reconcile`."""

from __future__ import annotations

from collections import Counter

from billing.models import LedgerEntry
from billing.reconcile.runner import run_checks
from fakes.replicate import FakeReplicate
from generation.models import Job

JOB_INPUT_KEY = "dreampixel_job"


def assert_every_job_settled(fake: FakeReplicate, *, note: str = "") -> None:
    jobs = list(Job.objects.all())
    statuses = Counter(job.status for job in jobs)
    assert set(statuses) <= set(Job.FINAL_STATUSES), f"{note}: jobs not final: {statuses}"
    for job in jobs:
        charges = LedgerEntry.objects.filter(idempotency_key=job.charge_key).count()
        refunds = LedgerEntry.objects.filter(kind="refund", reference=job.reference).count()
        assert charges == 1, f"{note}: {job.id} charged {charges} times"
        expected = 0 if job.status == Job.Status.SUCCEEDED else 1
        assert refunds == expected, f"{note}: {job.id} ({job.status}) refunded {refunds} times"
    # One prediction per job: every paid prediction is its own job's, none thrown away.
    owners = Counter(str(p.input.get(JOB_INPUT_KEY)) for p in fake.predictions.values())
    assert all(count == 1 for count in owners.values()), f"{note}: jobs with several predictions: {owners}"
    known = {job.prediction_id: str(job.id) for job in jobs if job.prediction_id}
    for prediction_id, prediction in fake.predictions.items():
        assert known.get(prediction_id) == str(prediction.input.get(JOB_INPUT_KEY)), (
            f"{note}: prediction {prediction_id} of job {prediction.input.get(JOB_INPUT_KEY)} was not adopted by it"
        )
    checked, _ = run_checks(full=True)
    findings = {finding.name: finding.count for finding in checked if not finding.ok}
    assert not findings, f"{note}: reconcile found {findings}"
