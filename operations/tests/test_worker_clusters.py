"""Each supervised cluster's heartbeat and progress, as staff see them (admin home, --status)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from operations.models import WorkerCluster

pytestmark = pytest.mark.django_db


@pytest.fixture
def clusters():
    now = timezone.now()
    WorkerCluster.objects.create(
        name="worker.1", started_at=now - timedelta(hours=1), last_heartbeat_at=now - timedelta(seconds=3),
        tasks_done=1234, seen_at=now,
    )  # fmt: skip
    WorkerCluster.objects.create(
        name="worker.2", started_at=now - timedelta(minutes=5), last_heartbeat_at=now - timedelta(minutes=4),
        tasks_done=7, restarts=2, last_restart_at=now - timedelta(minutes=5),
        last_restart_reason="no task finished for 61 s", seen_at=now,
    )  # fmt: skip
    WorkerCluster.objects.create(name="worker.3", seen_at=now - timedelta(minutes=10))


def test_the_admin_home_shows_each_cluster_s_heartbeat_progress_and_restarts(staff_client, clusters):
    page = staff_client.get("/admin/").content.decode()
    assert "Worker clusters" in page
    assert "worker.1</strong> · working" in page and "1234 tasks done" in page
    assert "worker.2</strong> · no recent heartbeat" in page and "2 restarts" in page
    assert "no task finished for 61 s" in page
    assert "worker.3</strong> · supervisor gone" in page


def test_the_status_option_prints_the_same(clusters, capsys):
    call_command("supervise_qcluster", "--status")
    out = capsys.readouterr().out
    assert "worker.1: working; last heartbeat 3 s ago; 1234 tasks done; 0 restarts" in out
    assert "worker.2: no recent heartbeat" in out and "(last: no task finished for 61 s)" in out
