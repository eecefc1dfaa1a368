"""Several results per prompt: each charged up front on its own, each that fails refunded on its
own exactly once, shown together. On PostgreSQL, with racing workers where it matters."""

from __future__ import annotations

import base64
import contextlib
import json
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from accounts.tests.factories import UserFactory
from billing.models import LedgerEntry
from billing.services import InsufficientCredits, balance_of, credits_grant, credits_refund
from generation.models import Job, job_charge_key, job_refund_key
from generation.providers import Prediction
from generation.providers.local import render_image
from generation.services import (
    GenerationError,
    job_cancel,
    job_create,
    job_finish,
    job_refund_by_staff,
    job_run,
)
from generation.services.finishing import job_fail
from generation.tests.factories import local_model
from tests.concurrency import run_at_once

pytestmark = pytest.mark.django_db
# The races run on connections of their own, which see only what was committed.
racing = pytest.mark.django_db(transaction=True)


def entries(job: Job, kind: str) -> list[LedgerEntry]:
    return list(LedgerEntry.objects.filter(kind=kind, reference=f"job:{job.id}").order_by("idempotency_key"))


def reconcile(capsys) -> dict:
    with contextlib.suppress(CommandError):  # non-zero exit when problems remain
        call_command("reconcile", "--json", "--full")
    return json.loads(capsys.readouterr().out)


def picture(prompt: str, seed: int) -> str:
    data = render_image(prompt=prompt, seed=seed, ratio="1:1")
    return "data:image/png;base64," + base64.b64encode(data).decode()


def running(job: Job) -> Job:
    """The job as a worker holds it just before its prediction's outcome arrives."""
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, prediction_id=f"p-{job.pk.hex[:8]}")
    job.refresh_from_db()
    return job


def test_four_images_are_charged_one_by_one_up_front_and_shown_together(client, creator):
    model = local_model(max_outputs=4)
    job = job_create(user=creator, model=model, prompt="Four foxes in the snow", aspect_ratio="square", num_outputs=4)
    # Charged before anything runs: one entry per image, at the catalog's price each.
    charges = entries(job, "charge")
    assert [entry.idempotency_key for entry in charges] == [job_charge_key(job.id, n) for n in range(4)]
    assert {entry.amount for entry in charges} == {-500}
    assert (job.cost, balance_of(creator)) == (2_000, 8_000)

    job_run(job_id=job.id)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.outputs.count() == 4
    sizes = {output.size for output in job.outputs.all()}
    assert len(sizes) == 4  # four different pictures, not one four times

    client.force_login(creator)
    page = client.get(job.get_absolute_url()).content.decode()
    assert page.count('class="output"') == 4 and "output-grid" in page
    assert "4 × 500" in page and "New variation · 2,000" in page
    gallery = client.get(reverse("gallery")).content.decode()
    assert gallery.count(f'href="/jobs/{job.id}/"') == 4 and "1 of 4" in gallery and "4 of 4" in gallery


def test_an_image_the_model_holds_back_is_refunded_on_its_own_and_the_rest_are_kept(client, creator, capsys):
    model = local_model(max_outputs=4)
    job = job_create(
        user=creator, model=model, prompt="A harbour at night [fail-one]", aspect_ratio="square", num_outputs=4
    )
    job_run(job_id=job.id)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert (job.outputs.count(), job.failed_outputs) == (3, 1)
    [refund] = entries(job, "refund")
    assert (refund.idempotency_key, refund.amount) == (job_refund_key(job.id, 3), 500)
    assert refund.refund_of.idempotency_key == job_charge_key(job.id, 3)
    assert balance_of(creator) == 10_000 - 1_500

    client.force_login(creator)
    page = client.get(job.get_absolute_url()).content.decode()
    assert "1 of 4 images was held back by the model&#x27;s safety filter. Its 500 credits were refunded." in page
    assert page.count('class="output"') == 3
    assert reconcile(capsys)["ok"]


def test_a_failed_job_refunds_every_image_once(creator, capsys):
    job = job_create(user=creator, model=local_model(max_outputs=4), prompt="Broken [fail]", aspect_ratio="square",
                     num_outputs=3)  # fmt: skip
    job_run(job_id=job.id)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.failed_outputs == 3
    assert [entry.idempotency_key for entry in entries(job, "refund")] == [job_refund_key(job.id, n) for n in range(3)]
    assert balance_of(creator) == 10_000
    assert job_fail(job_id=job.id, message="again") is False  # already final: nothing more
    assert len(entries(job, "refund")) == 3
    assert reconcile(capsys)["ok"]


def test_more_images_than_the_model_makes_is_refused_and_charges_nothing(client, creator):
    single = local_model(max_outputs=1)
    with pytest.raises(GenerationError, match="makes one result at a time"):
        job_create(user=creator, model=single, prompt="Two please", aspect_ratio="square", num_outputs=2)
    client.force_login(creator)
    response = client.post(reverse("create"), {
        "model": single.pk, "prompt": "Two please", "aspect_ratio": "square", "num_outputs": 2,
        "form_token": str(uuid.uuid4()),
    })  # fmt: skip
    assert response.status_code == 200
    assert "makes one image at a time" in response.content.decode()
    assert not Job.objects.exists() and balance_of(creator) == 10_000


def test_not_enough_credits_for_every_image_says_what_the_job_needs_and_charges_nothing():
    user = UserFactory()
    credits_grant(user=user, amount=1_200, key=f"purchase:{user.pk}")
    with pytest.raises(InsufficientCredits, match="this needs 1,500 and you have 1,200"):
        job_create(user=user, model=local_model(max_outputs=4), prompt="Three", aspect_ratio="square", num_outputs=3)
    assert not Job.objects.exists() and balance_of(user) == 1_200


@racing
def test_many_jobs_of_several_images_at_once_never_overdraw_the_balance():
    user = UserFactory()
    credits_grant(user=user, amount=5_000, key=f"purchase:{user.pk}")
    model = local_model(max_outputs=4)

    def submit(n: int):
        return job_create(user=user, model=model, prompt=f"Racing {n}", aspect_ratio="square", num_outputs=4)

    results = run_at_once(8, submit)
    made = [result for result in results if isinstance(result, Job)]
    assert len(made) == 2  # two of 2,000 fit in 5,000; a third would not
    assert all(isinstance(result, InsufficientCredits) for result in results if not isinstance(result, Job))
    assert balance_of(user) == 1_000
    assert LedgerEntry.objects.filter(kind="charge").count() == 8  # four per job made, none half-made


@racing
def test_two_workers_finishing_the_same_job_refund_its_lost_image_once(creator, capsys):
    job = running(job_create(user=creator, model=local_model(max_outputs=4), prompt="Kites", aspect_ratio="square",
                             num_outputs=4))  # fmt: skip
    # Three pictures and a file that is not one: the fourth result is lost.
    outputs = [picture("Kites", n) for n in range(3)] + ["data:image/png;base64," + base64.b64encode(b"junk").decode()]
    prediction = Prediction(id=job.prediction_id, status="succeeded", outputs=outputs)

    results = run_at_once(
        2, lambda _: job_finish(job=Job.objects.select_related("model").get(pk=job.pk), prediction=prediction)
    )
    assert sorted(results) == [False, True]  # one of them decided
    job.refresh_from_db()
    assert (job.status, job.outputs.count(), job.failed_outputs) == (Job.Status.SUCCEEDED, 3, 1)
    assert [entry.idempotency_key for entry in entries(job, "refund")] == [job_refund_key(job.id, 3)]
    assert "could not be saved" in job.error_message
    assert reconcile(capsys)["ok"]


@racing
def test_a_cancel_racing_a_partial_success_gives_images_or_credits_never_both(creator, capsys):
    for attempt in range(4):
        job = running(job_create(user=creator, model=local_model(max_outputs=4), prompt=f"Race {attempt}",
                                 aspect_ratio="square", num_outputs=4))  # fmt: skip
        prediction = Prediction(
            id=job.prediction_id, status="succeeded", outputs=[picture("Race", n) for n in range(3)]
        )

        def race(n: int, job=job, prediction=prediction):
            if n == 0:
                return job_finish(job=Job.objects.select_related("model").get(pk=job.pk), prediction=prediction)
            with contextlib.suppress(GenerationError):  # finished first: nothing to cancel
                job_cancel(job=Job.objects.get(pk=job.pk))

        run_at_once(2, race)
        job.refresh_from_db()
        refunded = sum(entry.amount for entry in entries(job, "refund"))
        delivered = job.outputs.count()
        assert (job.status, delivered, refunded) in {(Job.Status.SUCCEEDED, 3, 500), (Job.Status.CANCELED, 0, 2_000)}
        assert delivered * job.unit_cost + refunded == job.cost
    assert reconcile(capsys)["ok"]


@racing
def test_staff_refund_after_a_lost_image_refunds_only_the_rest_once(creator, staff_user, capsys):
    job = job_create(user=creator, model=local_model(max_outputs=4), prompt="Reported [fail-one]",
                     aspect_ratio="square", num_outputs=4)  # fmt: skip
    job_run(job_id=job.id)
    job.refresh_from_db()
    assert len(entries(job, "refund")) == 1

    results = run_at_once(
        2, lambda _: job_refund_by_staff(job=Job.objects.get(pk=job.pk), staff=staff_user, reason="Bad")
    )
    refunds = entries(job, "refund")
    assert len(refunds) == 4 and sum(entry.amount for entry in refunds) == job.cost
    assert [entry.actor for entry in refunds if entry.idempotency_key != job_refund_key(job.id, 3)] == [staff_user] * 3
    assert True in results  # at least one wrote them; the other found nothing left, or replayed
    assert job_refund_by_staff(job=job, staff=staff_user, reason="Again") is False
    assert balance_of(creator) == 10_000
    assert reconcile(capsys)["ok"]


def test_a_job_that_fails_after_one_image_was_refunded_refunds_only_the_rest(creator, capsys):
    job = running(job_create(user=creator, model=local_model(max_outputs=4), prompt="Half-way", aspect_ratio="square",
                             num_outputs=4))  # fmt: skip
    # The last image's refund is in the ledger already (as when it was lost).
    credits_refund(charge_key=job_charge_key(job.id, 3), key=job_refund_key(job.id, 3), memo="Not delivered")
    assert job_fail(job_id=job.id, message="The model could not make this one.") is True
    refunds = entries(job, "refund")
    assert len(refunds) == 4 and sum(entry.amount for entry in refunds) == 2_000
    assert balance_of(creator) == 10_000

    # The same after a crash: a job marked failed by hand with one image refunded is owed three,
    # which reconcile --fix writes once.
    other = job_create(user=creator, model=local_model(max_outputs=4), prompt="Crashed", aspect_ratio="square",
                       num_outputs=4)  # fmt: skip
    credits_refund(charge_key=job_charge_key(other.id, 1), key=job_refund_key(other.id, 1), memo="Not delivered")
    Job.objects.filter(pk=other.pk).update(status=Job.Status.FAILED)
    report = reconcile(capsys)
    assert report["findings"]["finished_jobs_without_refund"]["count"] == 1
    with contextlib.suppress(CommandError):
        call_command("reconcile", "--json", "--full", "--fix")
    fixed = json.loads(capsys.readouterr().out)
    assert fixed["ok"] and fixed["fixed"] == {"finished_jobs_without_refund": 1}
    assert len(entries(other, "refund")) == 4 and balance_of(creator) == 10_000
    assert reconcile(capsys)["ok"]


def test_reconcile_finds_a_job_charged_for_fewer_images_than_it_asked_and_a_lost_image_not_refunded(creator, capsys):
    short = job_create(user=creator, model=local_model(max_outputs=4), prompt="Short", aspect_ratio="square")
    Job.objects.filter(pk=short.pk).update(num_outputs=2)  # asked for two, charged for one
    lost = job_create(
        user=creator, model=local_model(max_outputs=4), prompt="Lost", aspect_ratio="square", num_outputs=2
    )
    job_run(job_id=lost.id)
    Job.objects.filter(pk=lost.pk).update(failed_outputs=1)  # one said lost, never refunded
    report = reconcile(capsys)
    assert report["findings"]["jobs_without_charge"]["examples"][0]["job"] == str(short.id)
    owed = report["findings"]["finished_jobs_without_refund"]
    assert owed["count"] == 1 and owed["examples"][0]["job"] == str(lost.id)
    with contextlib.suppress(CommandError):
        call_command("reconcile", "--json", "--full", "--fix")
    capsys.readouterr()
    assert [entry.idempotency_key for entry in entries(lost, "refund")] == [job_refund_key(lost.id, 1)]
    # The system refunding a delivered image is found too.
    credits_refund(charge_key=job_charge_key(lost.id, 0), key=job_refund_key(lost.id, 0), memo="wrongly")
    assert reconcile(capsys)["findings"]["succeeded_jobs_with_refund"]["count"] == 1
