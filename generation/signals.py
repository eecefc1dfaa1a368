from __future__ import annotations

from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone
from django_q.signals import post_execute

from accounts.services import account_deleting
from generation.models import Job, JobOutput, Upload
from generation.outputs import delete_files


@receiver(account_deleting, dispatch_uid="generation_delete_account_content")
def delete_account_content(sender, user, **kwargs) -> None:
    # The jobs stay (the ledger refers to them) but lose their content: prompts and files.
    outputs = JobOutput.objects.filter(job__user=user)
    names = [name for pair in outputs.values_list("file", "thumbnail") for name in pair if name]
    outputs.delete()
    Job.objects.filter(user=user).update(prompt="", deleted_at=timezone.now())
    # Every photo they uploaded, used by a job or not.
    photos = Upload.objects.filter(user=user).exclude(file="")
    names += list(photos.values_list("file", flat=True))
    photos.update(file="")
    transaction.on_commit(lambda: delete_files(names))  # storage I/O once the rows are gone


@receiver(post_execute, dispatch_uid="generation_cluster_heartbeat")
def cluster_heartbeat(sender, task, **kwargs) -> None:
    # Sent by the cluster's monitor once a task's result is handled: the end of the pipeline,
    # so a wedged worker pool, pusher or monitor all stop the heartbeat.
    from generation.supervisor import heartbeat_record

    heartbeat_record()
