from __future__ import annotations

from django.core.management.base import BaseCommand

from operations.schedules import install_schedules


class Command(BaseCommand):
    help = (
        "Install the recurring tasks django-q2 runs: the stuck-job sweeper and the HEARTBEAT_URL "
        "ping every minute, alerts every five minutes, reconcile hourly and cleanup daily. Safe to run again: each schedule "
        "is updated by its name, never duplicated. Every `migrate` runs it too (a post_migrate handler)."
    )

    def handle(self, *args, **options):
        for name in install_schedules():
            self.stdout.write(f"  scheduled: {name}")
