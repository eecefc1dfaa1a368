"""Keeping a `qcluster` working: run it as a child, watch its heartbeat, restart it when stalled.

django-q2 1.11 can wedge for good when one of its processes dies at the wrong moment (upstream
issue #23): a worker, or the monitor, killed while waiting on the cluster's internal queue
takes that queue's lock with it, and the sentinel's replacement waits forever; `SIGTERM` then
no longer stops the cluster either. Workers do die (OOM while decoding a video), so the worker
process of the Procfile is `manage.py supervise_qcluster`, which:

- starts `manage.py qcluster` in a process group of its own;
- counts a heartbeat only a working cluster can produce: the cluster's monitor touches a file
  (HEARTBEAT_FILE_ENV) after each task it finished, heartbeat tasks included, so a wedged
  worker pool, pusher or monitor all stop it. While the cluster has nothing to do, the
  supervisor enqueues a no-op heartbeat task every few seconds;
- restarts the cluster (SIGTERM, then SIGKILL of its whole group after a short grace) when no
  task finished for `stall_seconds` although the queue took our heartbeats, or when it exited;
- on SIGTERM stops the cluster within `stop_grace_seconds` (SIGKILL after it) and exits;
- writes what it sees to `WorkerCluster` (admin home, runbook) a few times a minute.

Tasks a killed cluster had taken come back at once. On Redis the cluster takes each task onto
a list of its own (core/taskqueue.py); once the supervisor has killed the cluster's whole
process group, it hands that list back to the head of the queue (`tasks_give_back`): a job's
run task once, and only if nobody sent the job again since (a running job's lease, which was
the dead worker's, ends then too); heartbeats are dropped; any other task goes back as it was.
It does so after a restart, after stopping, and when it starts (a supervisor of the same name
that died). Should that fail (Redis down), the sweeper still sends the jobs again within
JOB_REQUEUE_AFTER_SECONDS / JOB_LEASE_SECONDS.

With several clusters on one queue another cluster may run our heartbeat task: each supervisor
enqueues at the same rate, so an idle, healthy cluster gets none of them within the stall
window with a probability of about e^-(stall/interval) (e^-12 with the defaults). Even then
the restart is graceful: a working cluster stops within the grace period and loses nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.signing import SignedPackage
from django_q.tasks import async_task

from core.taskqueue import INFLIGHT_ENV, TrackedRedis, task_of
from generation.queue import RUN_JOB_TASK
from generation.services import job_requeue_lost
from operations.models import WorkerCluster

logger = logging.getLogger("operations.supervisor")

HEARTBEAT_FILE_ENV = "DREAMPIXEL_HEARTBEAT_FILE"
HEARTBEAT_TASK = "operations.tasks.cluster_heartbeat"
_finished_in_this_process = 0


def heartbeat_record() -> None:
    """Called by the cluster's monitor after each finished task (django-q2's post_execute)."""
    global _finished_in_this_process
    path = os.environ.get(HEARTBEAT_FILE_ENV)
    if not path:
        return  # a cluster nobody supervises
    _finished_in_this_process += 1
    partial = f"{path}.{os.getpid()}"
    try:
        Path(partial).write_text(f"{_finished_in_this_process} {os.getpid()} {time.time()}")
        os.replace(partial, path)  # the supervisor never reads half a line
    except OSError as error:
        logger.warning("could not write the cluster heartbeat: %s", error)


def tasks_give_back(holder: str) -> int:
    """Hand what a dead cluster had taken back to the head of the queue; returns how many tasks
    went back. Only once the cluster's every process is gone: a live one would run them too."""
    broker = get_broker()
    if not isinstance(broker, TrackedRedis):
        return 0  # the ORM broker hands a task out again by itself, after Q_CLUSTER["retry"]
    taken = broker.take(holder)
    try:
        again = [payload for payload in map(_to_send_again, taken) if payload is not None]
    except Exception:
        broker.hold(holder, taken)  # the database is down: the next give-back tries again
        raise
    broker.push_front(again)
    if again:
        logger.warning("handed %s task(s) of the dead cluster %s back to the queue", len(again), holder)
    return len(again)


def _to_send_again(payload: bytes) -> bytes | None:
    task = task_of(payload)
    if task.get("func") == HEARTBEAT_TASK:
        return None  # meant for the dead cluster only
    if task.get("func") == RUN_JOB_TASK and task.get("args"):
        if not job_requeue_lost(job_id=uuid.UUID(str(task["args"][0])), enqueued_at=task["started"]):
            return None
        # Stamped anew: should the next cluster die too, its give-back sees a task sent after the
        # job's last_enqueued_at, as it should.
        return SignedPackage.dumps({**task, "started": timezone.now()})
    return payload


def default_name() -> str:
    # Stable per machine or dyno, so a restarted supervisor updates its own row.
    return settings.WORKER_NAME or os.environ.get("DYNO") or f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Supervisor:
    name: str
    stall_seconds: float = 60.0
    heartbeat_seconds: float = 5.0
    stop_grace_seconds: float = 20.0
    restart_grace_seconds: float = 5.0
    command: list[str] = field(
        default_factory=lambda: [sys.executable, str(settings.BASE_DIR / "manage.py"), "qcluster"]
    )
    tick: float = 0.2
    save_every: float = 5.0

    def __post_init__(self) -> None:
        self.stopping = False
        self.child: subprocess.Popen | None = None
        self.child_started = 0.0
        self.restarts = 0
        self.tasks_done = 0
        self.last_heartbeat_at: datetime | None = None
        self._last_beat = ""
        self._last_count = 0
        self._last_progress = 0.0
        self._queue_ok_since: float | None = None
        self._last_enqueue = 0.0
        self._last_save = 0.0
        self._restart_reason = ""
        self._broker = None  # one connection for the heartbeats, made on first use
        self.heartbeat_file = Path(tempfile.mkdtemp(prefix="dreampixel-qcluster-")) / "heartbeat"

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        quick_failures = 0
        self._give_back()  # a supervisor of this name that died may have left its cluster's tasks
        while not self.stopping:
            self._start_child()
            reason = self._watch()
            if self.stopping:
                break
            lived = time.monotonic() - self.child_started
            logger.error("restarting qcluster %s: %s", self.name, reason)
            self._stop_child(grace=self.restart_grace_seconds)
            self._give_back()
            self.restarts += 1
            self._restart_reason = reason
            self._save(restarted=True)
            # A cluster that dies right away (no database, no broker) is retried with backoff.
            quick_failures = quick_failures + 1 if lived < 10 else 0
            self._sleep(min(2**quick_failures - 1, 30))
        logger.info("supervisor %s stopping qcluster (grace %s s)", self.name, self.stop_grace_seconds)
        self._stop_child(grace=self.stop_grace_seconds)
        self._give_back()
        self._save(stopped=True)
        shutil.rmtree(self.heartbeat_file.parent, ignore_errors=True)
        return 0

    def _on_signal(self, signum, frame) -> None:
        self.stopping = True  # only a flag: logging from a signal handler can deadlock

    def _sleep(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < until:
            time.sleep(self.tick)

    def _start_child(self) -> None:
        self.heartbeat_file.unlink(missing_ok=True)
        self._last_beat = ""
        env = {**os.environ, HEARTBEAT_FILE_ENV: str(self.heartbeat_file), INFLIGHT_ENV: self.name}
        # A session of its own: one signal reaches the cluster's every process.
        self.child = subprocess.Popen(self.command, env=env, start_new_session=True)  # noqa: S603 (our own command)
        self.child_started = self._last_progress = time.monotonic()
        self._queue_ok_since = None
        logger.info("supervisor %s started qcluster (pid %s)", self.name, self.child.pid)
        self._save(started=True)

    def _watch(self) -> str:
        """Return why the cluster must be restarted, or "" once we are stopping."""
        assert self.child is not None  # _start_child made it just before
        while not self.stopping:
            code = self.child.poll()
            if code is not None:
                return f"qcluster exited with code {code}"
            now = time.monotonic()
            self._read_heartbeat(now)
            idle_for = now - self._last_progress
            if idle_for >= self.heartbeat_seconds and now - self._last_enqueue >= self.heartbeat_seconds:
                self._enqueue_heartbeat(now)
            # Only a queue that takes our heartbeats can show that the cluster is stuck; a
            # cluster that has not finished its first task yet may still be starting up.
            if self._queue_ok_since is not None:
                waiting = now - max(self._last_progress, self._queue_ok_since)
                allowed = self.stall_seconds if self._last_beat else 2 * self.stall_seconds
                if waiting > allowed:
                    return f"no task finished for {int(waiting)} s"
            if now - self._last_save >= self.save_every:
                self._save()
            time.sleep(self.tick)
        return ""

    def _read_heartbeat(self, now: float) -> None:
        try:
            beat = self.heartbeat_file.read_text()
        except OSError:
            return
        if not beat or beat == self._last_beat:
            return
        try:
            count = int(beat.split()[0])
        except (ValueError, IndexError):
            return
        # A new monitor (a restart, a reincarnation) counts from 1 again.
        first = not self._last_beat
        self.tasks_done += count if count < self._last_count or first else count - self._last_count
        self._last_beat, self._last_count = beat, count
        self._last_progress = now
        self.last_heartbeat_at = timezone.now()
        if first:
            self._save()  # staff see at once that the new cluster works

    def _enqueue_heartbeat(self, now: float) -> None:
        self._last_enqueue = now
        try:
            self._broker = self._broker or get_broker()
            async_task(
                HEARTBEAT_TASK,
                task_name=f"heartbeat-{self.name}",
                save=False,
                broker=self._broker,
            )
        except Exception as error:  # the broker is down: not the cluster's fault
            if self._queue_ok_since is not None:
                logger.warning("supervisor %s: the queue is unreachable: %s", self.name, error)
            self._queue_ok_since = None
        else:
            if self._queue_ok_since is None:
                self._queue_ok_since = now

    def _stop_child(self, *, grace: float) -> None:
        child = self.child
        if child is None:
            return
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                logger.error("qcluster %s did not stop within %s s: killing it", self.name, grace)
        # Whatever is left of the group (all of it after a timeout, or workers orphaned by a
        # dead sentinel) goes now; what they held is handed back once none of them is left.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        _wait_for_group(child.pid)

    def _give_back(self) -> None:
        try:
            tasks_give_back(self.name)
        except Exception as error:  # Redis or the database down: the sweeper sends the jobs again
            logger.warning("supervisor %s could not hand back its cluster's tasks: %s", self.name, error)
            connection.close()

    # -- what staff see ---------------------------------------------------------------------

    def _save(self, *, started: bool = False, restarted: bool = False, stopped: bool = False) -> None:
        self._last_save = time.monotonic()
        now = timezone.now()
        values = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "tasks_done": self.tasks_done,
            "restarts": self.restarts,
            "last_heartbeat_at": self.last_heartbeat_at,
            "seen_at": now,
            "stopped_at": now if stopped else None,
        }
        if started:
            values["started_at"] = now
        if restarted:
            values |= {"last_restart_at": now, "last_restart_reason": self._restart_reason[:200]}
        try:
            WorkerCluster.objects.update_or_create(name=self.name, defaults=values)
        except DatabaseError as error:  # best effort: the database may be the thing that is down
            logger.warning("supervisor %s could not save its status: %s", self.name, error)
            connection.close()


def _wait_for_group(pgid: int, timeout: float = 5.0) -> None:
    # SIGKILLed processes close their connections as they exit, a moment after killpg returns;
    # a task the broker handed one of them in that moment is on the list by then. Members left
    # to us to reap (when we are a container's first process) are reaped here.
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(-pgid, os.WNOHANG)
        if not _group_running(pgid):
            return
        time.sleep(0.02)


def _group_running(pgid: int) -> bool:
    """Whether a process of the group still runs. A zombie does not: it has closed its
    connections and only waits for its parent (often init) to collect it."""
    try:
        entries = list(Path("/proc").iterdir())
    except OSError:  # no /proc: ask the kernel, which counts zombies too
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            # After the command name (which may hold spaces): state, parent, process group, ...
            state, _, group = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if int(group) == pgid and state != "Z":
            return True
    return False
