"""How the worker stops depends on who gets the SIGTERM.

`docker stop`, Render and systemd with `KillMode=mixed` send it to the main process alone, the
supervisor, which asks its cluster to stop and exits within seconds. systemd's default
(`KillMode=control-group`) sends it to every process of the service at once: django-q2's own
processes then take it before their cluster can stop them, and depending on which gets there
first the cluster either dies with its tasks cut short or hangs until the supervisor kills it at
the end of its grace (seen here: 20 s for an idle worker, the grace's default). Either way the
supervisor bounds the stop. docs/deployment.md's unit sets `KillMode=mixed`.
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
    assert "did not stop within" not in log.read_text()  # the cluster stopped itself, not killed
    assert took < GRACE, log.read_text()[-3000:]  # about 2 s on an idle machine
    assert not group_alive(cluster)


def test_sigterm_to_every_process_at_once_still_stops_the_worker_within_its_grace(supervised):
    supervisor, cluster, log = supervised
    everyone = [supervisor.pid, cluster, *children(cluster)]
    everyone += [pid for sentinel in children(cluster) for pid in children(sentinel)]
    started = time.monotonic()
    for pid in everyone:  # what systemd's default KillMode=control-group does
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    supervisor.wait(timeout=GRACE + 10)
    took = time.monotonic() - started
    assert took < GRACE + 3, log.read_text()[-3000:]
    assert not group_alive(cluster)
