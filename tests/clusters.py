"""Real clusters for fault tests: a Redis server of the test's own, qcluster under its
supervisor, the processes of a cluster by role, and the ledger checks every fault test ends with."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.models import LedgerEntry
from generation.models import Job
from generation.tests.test_qcluster import ROOT, database_url
from tests.redis_keys import new_prefix


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A redis-server on a free loopback port, without persistence: a restart loses the queue,
    as a restarted Redis without a disk does. Never the shared one: this one may be stopped."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tempfile.mkdtemp(prefix="dp-redis-")
        self.process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def pause(self) -> None:
        """Unreachable but keeping its data (a network partition): connections time out."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a paused server cannot act on SIGKILL's cleanup
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def use_queue(monkeypatch, redis_url: str) -> str:
    """Point this test process's django-q2 at a Redis queue of the test's own; returns its name."""
    from django_q.conf import Conf

    name = new_prefix(redis_url)  # its keys are deleted when the test ends
    monkeypatch.setattr(Conf, "CLUSTER_NAME", name)
    monkeypatch.setattr(Conf, "PREFIX", name)  # also the salt tasks are signed with
    monkeypatch.setattr(Conf, "REDIS", redis_url)
    monkeypatch.setattr(Conf, "ORM", None)  # the ORM broker would win over Redis
    return name


def cluster_env(*, redis_url: str, name: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url,
        "Q_CLUSTER_NAME": name,
        "CACHE_KEY_PREFIX": name,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "JOB_LEASE_SECONDS": "5",
        **extra,
    }


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def stop(process: subprocess.Popen, timeout: float = 20) -> float:
    """SIGTERM, then SIGKILL of the whole group; returns how long the process took to exit."""
    started = time.monotonic()
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    took = time.monotonic() - started
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    return took


def _live_processes() -> Iterator[tuple[int, list[str]]]:
    """Each live process (zombies waiting to be reaped are not) with its /proc stat fields after
    the name: state, parent, process group, ..., start time at index 19."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            yield int(entry.name), fields


def children(pid: int) -> list[int]:
    """Live children of a process, oldest first."""
    found = [(int(fields[19]), child) for child, fields in _live_processes() if int(fields[1]) == pid]
    return [child for _, child in sorted(found)]


def cluster_processes(qcluster_pid: int, workers: int, timeout: float = 30) -> dict:
    """The sentinel's children by role: it starts the workers, then the monitor, then the pusher."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sentinels = children(qcluster_pid)
        if sentinels:
            spawned = children(sentinels[0])
            if len(spawned) >= workers + 2:
                return {"workers": spawned[:workers], "monitor": spawned[workers], "pusher": spawned[workers + 1]}
        time.sleep(0.1)
    raise AssertionError("the cluster never started its processes")


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies waiting to be reaped do not)."""
    return any(int(fields[2]) == pgid for _, fields in _live_processes())


def assert_every_job_final_and_paid_once(jobs, capsys, context: str = "") -> None:
    """Every job final, charged once, refunded at most once (and only if it failed), and a
    clean `reconcile`."""
    for job in Job.objects.filter(pk__in=[j.pk for j in jobs]):
        assert job.is_final, f"{context}: {job.id} is still {job.status}"
        charges = LedgerEntry.objects.filter(idempotency_key=f"charge:{job.id}").count()
        refunds = LedgerEntry.objects.filter(kind="refund", reference=f"job:{job.id}").count()
        assert charges == 1, f"{context}: {job.id} charged {charges} times"
        assert refunds == (1 if job.status != Job.Status.SUCCEEDED else 0), f"{context}: {job.id} refunded {refunds}"
    capsys.readouterr()
    with contextlib.suppress(CommandError):
        call_command("reconcile", "--json")
    report = json.loads(capsys.readouterr().out)
    assert report["ok"], f"{context}: {report}"
