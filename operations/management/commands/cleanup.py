from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from operations.cleanup import cleanup_run


class Command(BaseCommand):
    help = (
        "Delete what nobody needs: uploaded photos no job uses (older than a day), files of "
        "deleted jobs and accounts, files of jobs that failed more than "
        f"{settings.CLEANUP_FAILED_AFTER_DAYS} days ago, task-queue results older than "
        f"{settings.CLEANUP_TASK_RESULTS_DAYS} days, expired sessions, Replicate webhook records and "
        f"the payloads of handled Stripe events older than {settings.WEBHOOK_RETENTION_DAYS} days "
        "(the Stripe event ids stay, so a redelivery remains a no-op), and records of items the scheduled "
        "work skipped, not seen for 30 days. An item that cannot be removed is skipped and shown on "
        "the admin home; the rest goes on. Never touches the ledger or "
        "the jobs themselves. Works in batches of 1,000 rows in primary-key order, so memory stays "
        "flat and each statement locks one batch. Prints what it did; with --dry-run it reads the "
        "same batches, prints the same counts (and, with --list, the same items) and deletes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Report what would go; delete nothing.")
        parser.add_argument("--list", action="store_true", help="Print every item, not only the counts.")

    def handle(self, *args, dry_run: bool, **options):
        # Items are printed as their batch is read: a long list is never held in memory.
        on_item = (lambda name, item: self.stdout.write(f"         {name}: {item}")) if options["list"] else None
        parts = cleanup_run(dry_run=dry_run, on_item=on_item)
        verb = "Would delete" if dry_run else "Deleted"
        for part in parts:
            self.stdout.write(f"{verb} {part.count:>5}  {part.description}")
        total = sum(part.count for part in parts)
        self.stdout.write(("Dry run: nothing was deleted. " if dry_run else "") + f"{total} item(s) in all.")
