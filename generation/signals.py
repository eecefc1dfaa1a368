from __future__ import annotations

from django.dispatch import receiver
from django_q.signals import post_execute

from accounts.services import account_deleting


@receiver(account_deleting, dispatch_uid="generation_delete_account_content")
def delete_account_content(sender, user, **kwargs) -> None:
    from generation.services.actions import account_content_delete

    account_content_delete(user=user)


@receiver(post_execute, dispatch_uid="generation_cluster_heartbeat")
def cluster_heartbeat(sender, task, **kwargs) -> None:
    # Sent by the cluster's monitor once a task's result is handled: the end of the pipeline,
    # so a wedged worker pool, pusher or monitor all stop the heartbeat.
    from generation.supervisor import heartbeat_record

    heartbeat_record()
