"""What the scheduled loops skipped: one bad item never stops a loop (core/skips.py)."""

from __future__ import annotations

from django.db import models


class SkippedItem(models.Model):
    """An item one of the scheduled loops (the poller, the sweeper, reconcile, cleanup, the
    alerts, the Stripe event retries) could not handle and went past: one row per loop and item,
    kept up to date each time it is skipped again, shown on the admin home while it recurs."""

    loop = models.CharField(max_length=40)
    item = models.CharField(max_length=255)
    error = models.TextField(blank=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(db_index=True)
    times = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["loop", "item"], name="core_skippeditem_once")]

    def __str__(self) -> str:
        return f"{self.loop}: {self.item}"
