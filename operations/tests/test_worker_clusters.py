"""Each supervised cluster's heartbeat and progress, as staff see them (admin home, --status)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from generation.tests.test_qcluster import ROOT, database_url
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


def test_the_status_option_prints_the_same_and_fails_for_a_stale_cluster(clusters, capsys):
    with pytest.raises(CommandError) as failed:
        call_command("supervise_qcluster", "--status")
    out = capsys.readouterr().out
    assert "worker.1: working; last heartbeat 3 s ago; 1234 tasks done; 0 restarts" in out
    assert "worker.2: no recent heartbeat" in out and "(last: no task finished for 61 s)" in out
    assert failed.value.returncode == 1
    assert str(failed.value) == "worker.2: no recent heartbeat; worker.3: supervisor gone"


def test_the_status_is_ok_while_one_cluster_works_and_the_others_were_stopped(capsys):
    now = timezone.now()
    WorkerCluster.objects.create(name="worker.1", last_heartbeat_at=now, seen_at=now)
    WorkerCluster.objects.create(name="worker.2", last_heartbeat_at=now - timedelta(hours=1), stopped_at=now)
    call_command("supervise_qcluster", "--status")  # no error: exit status 0
    assert "worker.2: stopped" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_the_status_exits_with_1_when_the_only_cluster_was_stopped():
    # What an operator's monitor sees: the process's exit status, not a line to read.
    now = timezone.now()
    WorkerCluster.objects.create(name="worker.1", last_heartbeat_at=now - timedelta(minutes=3), stopped_at=now)
    command = [sys.executable, "manage.py", "supervise_qcluster", "--status"]
    env = {**os.environ, "DATABASE_URL": database_url()}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "worker.1: stopped" in done.stdout
    assert "no supervised cluster is working" in done.stderr

    done = subprocess.run([*command, "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["ok"] is False and report["problems"] == ["no supervised cluster is working"]
    assert report["clusters"][0]["name"] == "worker.1" and report["clusters"][0]["state"] == "stopped"


def test_the_status_in_json_names_each_cluster_s_state_and_heartbeat_age(clusters, capsys):
    with pytest.raises(SystemExit) as failed:
        call_command("supervise_qcluster", "--status", "--json")
    assert failed.value.code == 1
    report = json.loads(capsys.readouterr().out)
    states = {c["name"]: (c["state"], c["heartbeat_age_seconds"] is not None) for c in report["clusters"]}
    assert states == {
        "worker.1": ("working", True),
        "worker.2": ("no recent heartbeat", True),
        "worker.3": ("supervisor gone", False),
    }
    assert report["ok"] is False and report["problems"] == [
        "worker.2: no recent heartbeat",
        "worker.3: supervisor gone",
    ]


def test_the_status_says_so_when_no_cluster_ever_reported(capsys):
    with pytest.raises(CommandError, match="no supervised cluster is working"):
        call_command("supervise_qcluster", "--status")
    assert "No supervised cluster has reported yet." in capsys.readouterr().out
