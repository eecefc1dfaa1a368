"""How the worker stops depends on who gets the SIGTERM.

`docker stop`, Render and systemd with `KillMode=mixed` send it to the main process alone, the
supervisor, which asks its cluster to stop and exits within seconds. systemd's default
(`KillMode=control-group`) sends it to every process of the service at once: django-q2's own
processes then take it too, the cluster never finishes stopping, and the supervisor has to kill
it at the end of its grace. docs/deployment.md's unit sets `KillMode=mixed` for this reason.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest

from operations.models import WorkerCluster
from tests.clusters import children, cluster_env, cluster_processes, group_alive, start, stop, use_queue

pytestmark = pytest.mark.django_db(transaction=True)
GRACE = 6


@pytest.fixture
def supervised(monkeypatch, redis_url, tmp_path):
    """A running supervise_qcluster on a queue of its own, with its log."""
    name = use_queue(monkeypatch, redis_url)
    log = tmp_path / "supervisor.log"
    args = ["supervise_qcluster", "--name", name, "--heartbeat-seconds", "0.5", "--stop-grace", str(GRACE)]
    supervisor = start(args, cluster_env(redis_url=redis_url, name=name, Q_WORKERS="2"), log)
    deadline = time.monotonic() + 30
    while not WorkerCluster.objects.filter(name=name, tasks_done__gt=0).exists():
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.1)
    [cluster] = children(supervisor.pid)
    cluster_processes(cluster, workers=2)  # every process of the cluster is up
    yield supervisor, cluster, log
    stop(supervisor, timeout=5)


def test_sigterm_to_the_supervisor_alone_stops_the_worker_in_seconds(supervised):
    supervisor, cluster, log = supervised
    took = stop(supervisor, timeout=GRACE + 5)
    assert took < 4, log.read_text()[-3000:]
    assert not group_alive(cluster)
    assert "did not stop within" not in log.read_text()


def test_sigterm_to_every_process_at_once_costs_the_whole_grace(supervised):
    supervisor, cluster, log = supervised
    everyone = [supervisor.pid, cluster, *children(cluster)]
    everyone += [pid for sentinel in children(cluster) for pid in children(sentinel)]
    started = time.monotonic()
    for pid in everyone:  # what systemd's default KillMode=control-group does
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    supervisor.wait(timeout=GRACE + 10)
    took = time.monotonic() - started
    # If this fails, django-q2 stops cleanly when all of its processes get SIGTERM, and the
    # deployment guide's KillMode=mixed is no longer needed.
    assert took >= GRACE - 0.5, f"stopped in {took:.1f} s"
    assert "did not stop within" in log.read_text()
    assert not group_alive(cluster)
