"""django-q2's Redis broker, keeping a list of what each supervised cluster has taken.

The stock Redis broker hands a task over with BLPOP: once a cluster's pusher holds it, Redis
forgets it, and a cluster that is killed or wedges (django-q2 issue #23) takes its tasks with it.
Here a cluster started by `supervise_qcluster` (which names it in INFLIGHT_ENV) takes each task
with BLMOVE onto a list of its own, in one atomic step, so a task is always either in the queue
or on the list of the cluster that took it. The cluster's monitor removes a task from the list
once it finished, whether it succeeded or failed (`inflight_release`); whatever is left when the
supervisor has killed the cluster is what the dead cluster held, and `inflight_take` hands it to
the supervisor (operations/supervisor.py) exactly once.

A cluster nobody supervises (`make dev`'s, a test's `qcluster`) takes tasks as the stock
broker does. Settings name this class as the broker whenever the queue is on Redis.
"""

from __future__ import annotations

import logging
import os
import pickle
from datetime import datetime

from django_q.brokers import get_broker
from django_q.brokers.redis_broker import Redis
from django_q.signing import BadSignature, SignedPackage

logger = logging.getLogger(__name__)

# Set by the supervisor for its `qcluster`: the name the cluster's list of taken tasks is kept under.
INFLIGHT_ENV = "DREAMPIXEL_INFLIGHT_AS"


def inflight_key(list_key: str, holder: str) -> str:
    return f"{list_key}:inflight:{holder}"


class TrackedRedis(Redis):
    def __init__(self, list_key: str | None = None):
        super().__init__(list_key)
        self.holder = os.environ.get(INFLIGHT_ENV, "")

    def __setstate__(self, state) -> None:
        # A broker handed to a cluster process by pickling reads the environment again.
        super().__setstate__(state)
        self.holder = os.environ.get(INFLIGHT_ENV, "")

    def dequeue(self):
        if not self.holder:
            return super().dequeue()
        task = self.connection.blmove(self.list_key, inflight_key(self.list_key, self.holder), 1, "LEFT", "RIGHT")
        return [(None, task)] if task else None

    def release(self, task_id: str) -> None:
        """Forget a finished task. The list holds what the cluster's pusher, workers and monitor
        have in hand (a few tasks), so finding it by its id is a short scan."""
        key = inflight_key(self.list_key, self.holder)
        for payload in self.connection.lrange(key, 0, -1):
            if task_of(payload).get("id") == task_id:
                self.connection.lrem(key, 1, payload)
                return

    def take(self, holder: str) -> list[bytes]:
        """Every task `holder` had taken and not finished, oldest first, removed from its list in
        the same transaction: a second call (another supervisor's, a retry) gets nothing."""
        key = inflight_key(self.list_key, holder)
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.lrange(key, 0, -1)
            pipe.delete(key)
            payloads, _ = pipe.execute()
        return list(payloads)

    def hold(self, holder: str, payloads: list[bytes]) -> None:
        # Back onto the holder's list, for a give-back that could not finish.
        if payloads:
            self.connection.rpush(inflight_key(self.list_key, holder), *payloads)

    def push_front(self, payloads: list[bytes]) -> None:
        # Ahead of the tasks waiting: they were taken first, and have waited longest.
        if payloads:
            self.connection.lpush(self.list_key, *reversed(payloads))

    def oldest_enqueued_at(self) -> datetime | None:
        """When the task at the head of the queue was enqueued, or None for an empty queue."""
        payload = self.connection.lindex(self.list_key, 0)
        return None if payload is None else task_of(payload).get("started")


def task_of(payload: bytes | str) -> dict:
    """A task package as django-q2 signed it (id, func, args, started, ...); {} if unreadable."""
    try:
        task = SignedPackage.loads(payload)
    except (BadSignature, TypeError, ValueError, pickle.UnpicklingError, ImportError, AttributeError):
        return {}  # signed under another secret, or naming code this release no longer has
    return task if isinstance(task, dict) else {}


_broker: TrackedRedis | None = None


def inflight_release(task_id: str) -> None:
    """Called by a supervised cluster's monitor after each finished task (operations/signals.py)."""
    global _broker
    if not os.environ.get(INFLIGHT_ENV):
        return
    try:
        _broker = _broker or get_broker()
        if isinstance(_broker, TrackedRedis):
            _broker.release(task_id)
    except Exception as error:  # Redis down: the entry stays, and is handed back after a restart
        logger.warning("could not release finished task %s: %s", task_id, error)
