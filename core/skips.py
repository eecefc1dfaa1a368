"""One bad item never stops a loop. The scheduled loops (the poller, the sweeper, reconcile,
cleanup, the alerts, the Stripe event retries) run each item inside `item_guard`: an item that
raises is skipped, logged with its traceback the first time it is skipped (again once a day
while it recurs), and kept in `SkippedItem` for the admin home; the loop goes on with the next.

Lost database connections are not an item's fault: they are raised, so the loop's task fails
and runs again on its schedule."""

from __future__ import annotations

import contextlib
import logging
import traceback
from collections.abc import Iterator
from datetime import timedelta

from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from core.models import SkippedItem

logger = logging.getLogger("core.skips")

# A skip is logged again when the item was last skipped longer ago than this.
LOG_AGAIN_AFTER = timedelta(hours=24)
# The admin home shows the items skipped within this long.
SHOWN_FOR = timedelta(hours=24)


@contextlib.contextmanager
def item_guard(*, loop: str, item: object) -> Iterator[None]:
    """Run one item of a loop; if it raises, skip it (recorded and logged once) and go on."""
    # Inside a transaction already (a test's, or a caller's), a failed statement would spoil the
    # rest of it: the item runs in a savepoint then. The loops themselves run in autocommit, so
    # no provider call is ever held inside a transaction by this.
    savepoint = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
    try:
        with savepoint:
            yield
    except (OperationalError, InterfaceError):
        raise
    except Exception as error:
        item_skipped(loop=loop, item=item, error=error)


def item_skipped(*, loop: str, item: object, error: BaseException) -> None:
    """Record that `loop` went past `item` because of `error`; log it the first time (a day)."""
    name = str(item)[:255]
    text = "".join(traceback.format_exception_only(type(error), error)).strip()[:2000]
    now = timezone.now()
    try:
        first = _record(loop, name, text, now)
    except DatabaseError:
        first = True  # could not remember it: better logged twice than never
    if first:
        logger.error("%s skipped %s: %s", loop, name, text, exc_info=error, extra={"loop": loop, "item": name})
    else:
        logger.debug("%s skipped %s again", loop, name)


def _record(loop: str, name: str, text: str, now) -> bool:
    """Count the skip; True when it should be logged (first seen, or not for a day)."""
    with transaction.atomic():
        row = SkippedItem.objects.select_for_update().filter(loop=loop, item=name).first()
        if row is not None:
            SkippedItem.objects.filter(pk=row.pk).update(last_seen_at=now, error=text, times=F("times") + 1)
            return row.last_seen_at < now - LOG_AGAIN_AFTER
        try:
            with transaction.atomic():
                SkippedItem.objects.create(loop=loop, item=name, error=text, first_seen_at=now, last_seen_at=now)
        except IntegrityError:  # another process recorded it first
            return False
        return True


def skipped_recently() -> list[SkippedItem]:
    """What the loops skipped within SHOWN_FOR, newest first (the admin home's list)."""
    since = timezone.now() - SHOWN_FOR
    return list(SkippedItem.objects.filter(last_seen_at__gte=since).order_by("-last_seen_at")[:20])
