from __future__ import annotations

from django.dispatch import receiver
from django_q.signals import post_execute

from core.taskqueue import inflight_release
from operations.supervisor import heartbeat_record


@receiver(post_execute, dispatch_uid="operations_cluster_heartbeat")
def cluster_heartbeat(sender, task, **kwargs) -> None:
    # Sent by the cluster's monitor once a task's result is handled: the end of the pipeline,
    # so a wedged worker pool, pusher or monitor all stop the heartbeat. Then the task is no
    # longer the cluster's to hand back (core/taskqueue.py).
    inflight_release(task["id"])
    heartbeat_record()
