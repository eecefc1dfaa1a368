"""What a supervised cluster takes from Redis stays on a list of its own until it is finished, so
a restart hands the dead cluster's tasks back at once, each job's once. (The clusters themselves
are killed in tests/faults/test_cluster_stalls.py.)"""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from django.utils import timezone
from django_q.conf import Conf
from django_q.tasks import async_task

from core.taskqueue import INFLIGHT_ENV, TrackedRedis, inflight_key, task_of
from generation.models import Job
from generation.services import job_create, sweep_stuck_jobs
from generation.tests.factories import local_model
from operations.supervisor import HEARTBEAT_TASK, tasks_give_back
from tests.clusters import use_queue

pytestmark = pytest.mark.django_db


@pytest.fixture
def queue(monkeypatch, redis_url):
    name = use_queue(monkeypatch, redis_url)
    monkeypatch.setattr(Conf, "BROKER_CLASS", "core.taskqueue.TrackedRedis")
    client = redis.from_url(redis_url)
    yield client, f"django_q:{name}:q"
    client.delete(*client.keys(f"django_q:{name}:*") or ["-"])


def take_as(holder: str, monkeypatch) -> TrackedRedis:
    # The broker as a supervised cluster's pusher builds it: the supervisor names it in the env.
    monkeypatch.setenv(INFLIGHT_ENV, holder)
    return TrackedRedis()


@pytest.fixture
def new_job(creator, django_capture_on_commit_callbacks):
    def create(prompt: str) -> Job:
        with django_capture_on_commit_callbacks(execute=True):  # the enqueue follows the commit
            return job_create(user=creator, model=local_model(), prompt=prompt, aspect_ratio="square")

    return create


def names(payloads) -> list[str]:
    return [task_of(payload)["name"] for payload in payloads]


def test_a_supervised_cluster_s_tasks_wait_on_its_own_list_until_finished(queue, monkeypatch):
    client, list_key = queue
    for name in ("first", "second", "third"):
        async_task("operations.tasks.check_alerts", task_name=name)
    pusher = take_as("worker.1", monkeypatch)
    taken = [pusher.dequeue()[0][1] for _ in range(2)]
    assert names(taken) == ["first", "second"]
    assert names(client.lrange(list_key, 0, -1)) == ["third"]
    assert names(client.lrange(inflight_key(list_key, "worker.1"), 0, -1)) == ["first", "second"]

    pusher.release(task_of(taken[0])["id"])  # the monitor, once "first" finished
    assert names(client.lrange(inflight_key(list_key, "worker.1"), 0, -1)) == ["second"]


def test_a_cluster_nobody_supervises_takes_tasks_as_django_q2_does(queue, monkeypatch):
    client, list_key = queue
    monkeypatch.delenv(INFLIGHT_ENV, raising=False)
    async_task("operations.tasks.check_alerts", task_name="plain")
    assert names([TrackedRedis().dequeue()[0][1]]) == ["plain"]
    assert client.keys(f"{list_key}:inflight:*") == []


def test_the_give_back_puts_the_dead_cluster_s_tasks_first_in_line_once(queue, monkeypatch):
    client, list_key = queue
    async_task("operations.tasks.check_alerts", task_name="taken")
    async_task(HEARTBEAT_TASK, task_name="heartbeat", save=False)
    async_task("operations.tasks.check_alerts", task_name="waiting")
    pusher = take_as("worker.1", monkeypatch)
    pusher.dequeue()
    pusher.dequeue()

    assert tasks_give_back("worker.1") == 1
    # The heartbeat was meant for the dead cluster only; the other task goes ahead of the queue.
    assert names(client.lrange(list_key, 0, -1)) == ["taken", "waiting"]
    assert tasks_give_back("worker.1") == 0  # a second give-back (a retry, another supervisor) finds nothing
    assert names(client.lrange(list_key, 0, -1)) == ["taken", "waiting"]


def test_a_lost_job_task_is_sent_again_once_and_its_lease_ends(queue, monkeypatch, new_job):
    client, list_key = queue
    queued = new_job("queued")
    running = new_job("running")
    pusher = take_as("worker.1", monkeypatch)
    pusher.dequeue()
    pusher.dequeue()
    # The dead cluster's worker had claimed the second job, with a minute's lease.
    lease = timezone.now() + timedelta(seconds=60)
    Job.objects.filter(pk=running.pk).update(status=Job.Status.RUNNING, lease_until=lease, attempts=1)

    assert tasks_give_back("worker.1") == 2
    assert names(client.lrange(list_key, 0, -1)) == [f"job-{queued.pk}", f"job-{running.pk}"]
    assert Job.objects.get(pk=running.pk).lease_until <= timezone.now()  # free for the task sent again
    assert sweep_stuck_jobs()["restarted"] == 0  # the sweeper's next minute: they were sent just now


def test_a_job_the_sweeper_sent_again_since_is_not_sent_a_second_time(queue, monkeypatch, settings, new_job):
    client, list_key = queue
    job = new_job("lost")
    pusher = take_as("worker.1", monkeypatch)
    pusher.dequeue()
    # The cluster wedged holding the task; the sweeper sent the job again before the restart.
    settings.JOB_REQUEUE_AFTER_SECONDS = 10
    Job.objects.filter(pk=job.pk).update(last_enqueued_at=timezone.now() - timedelta(seconds=30))
    assert sweep_stuck_jobs()["restarted"] == 1
    assert len(client.lrange(list_key, 0, -1)) == 1

    assert tasks_give_back("worker.1") == 0
    assert names(client.lrange(list_key, 0, -1)) == [f"job-{job.pk}"]  # one task for the job, not two


def test_a_finished_job_s_lost_task_is_dropped(queue, monkeypatch, new_job):
    client, list_key = queue
    job = new_job("done")
    take_as("worker.1", monkeypatch).dequeue()
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED, finished_at=timezone.now())
    assert tasks_give_back("worker.1") == 0
    assert client.llen(list_key) == 0


def test_a_task_sent_again_is_lost_no_more_if_the_next_cluster_dies_too(queue, monkeypatch, new_job):
    client, list_key = queue
    job = new_job("twice unlucky")
    take_as("worker.1", monkeypatch).dequeue()
    assert tasks_give_back("worker.1") == 1
    take_as("worker.1", monkeypatch).dequeue()  # the restarted cluster takes it, and dies as well
    assert tasks_give_back("worker.1") == 1
    assert names(client.lrange(list_key, 0, -1)) == [f"job-{job.pk}"]
