"""The poller: where no webhook can reach us (no PUBLIC_BASE_URL), one poller task checks every
running prediction about once a second in a few list calls, and enqueues the finishing of those
that are done (finishing.job_sync); those past their deadline are canceled and refunded.

One poller runs at a time, by the lease on its PredictionPoller row; it ends after a while and
hands over to a fresh task, so a deploy or a dead worker costs one lease (about ten seconds).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from core.skips import item_guard
from generation.models import AIModel, Job, PredictionPoller
from generation.providers import Prediction, ProviderError, get_provider
from generation.queue import job_sync_enqueue, poller_enqueue
from generation.services.common import LOOKBACK, MESSAGE_TIMEOUT, Status, model_seconds_note, prediction_cancel
from generation.services.finishing import job_fail

logger = logging.getLogger("generation.services")

POLLER = "replicate"

# Finishing enqueued per job by this process, so a pass does not enqueue it again while the
# first is still waiting for a worker.
_finishing: dict[uuid.UUID, float] = {}
_get_offset = 0


def _enqueue_finish(job_id: uuid.UUID) -> None:
    now = time.monotonic()
    if now - _finishing.get(job_id, -1e9) < 15:
        return
    _finishing[job_id] = now
    if len(_finishing) > 10_000:
        for key, moment in list(_finishing.items()):
            if now - moment > 60:
                del _finishing[key]
    job_sync_enqueue(job_id)


def predictions_poll_pass() -> int:
    """One look at every running Replicate prediction: those done are finished (by sync
    tasks, in parallel), those past their deadline canceled and refunded. Returns how many
    were running."""
    global _get_offset
    now = timezone.now()
    rows = list(
        Job.objects.filter(status=Status.RUNNING, provider=AIModel.Provider.REPLICATE)
        .exclude(prediction_id="")
        .order_by("started_at")
        .values("id", "provider", "prediction_id", "provider_token", "started_at", "deadline_at", "model_id")[
            : settings.JOB_POLL_BATCH
        ]
    )
    if not rows:
        return 0
    provider = get_provider(AIModel.Provider.REPLICATE)
    seen: dict[str, Prediction] = {}
    by_token: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_token.setdefault(row["provider_token"], []).append(row)
    for token, group in by_token.items():
        with item_guard(loop="poller", item=f"prediction list (token {token or '-'})"):
            try:
                found, _ = provider.recent(since=min(r["started_at"] for r in group) - LOOKBACK, token=token)
                seen |= found
            except ProviderError as error:
                logger.warning("poller could not list predictions: %s", error)
    # The rest (the list unavailable, or too long to reach them): a few by id each pass, in turn.
    unseen = [row for row in rows if row["prediction_id"] not in seen]
    if unseen:
        start = _get_offset % len(unseen)
        for row in (unseen[start:] + unseen[:start])[: settings.JOB_POLL_GETS_PER_PASS]:
            with item_guard(loop="poller", item=f"job {row['id']}"):
                try:
                    seen[row["prediction_id"]] = provider.get(row["prediction_id"], token=row["provider_token"])
                except ProviderError as error:
                    logger.warning("poller could not ask about %s: %s", row["prediction_id"], error)
        _get_offset += settings.JOB_POLL_GETS_PER_PASS
    for row in rows:
        # One job that cannot be settled (its refund refused, say) stops none of the others.
        with item_guard(loop="poller", item=f"job {row['id']}"):
            _settle_row(row, seen.get(row["prediction_id"]), now)
    return len(rows)


def _settle_row(row: Mapping[str, Any], prediction: Prediction | None, now) -> None:
    if prediction is not None and prediction.is_final:
        model_seconds_note(row["model_id"], prediction)
        _enqueue_finish(row["id"])
    elif row["deadline_at"] and row["deadline_at"] <= now:
        # From the row: what cancelling needs, without a query per overdue job.
        prediction_cancel(job_id=row["id"], provider=row["provider"], prediction_id=row["prediction_id"],
                          token=row["provider_token"])  # fmt: skip
        job_fail(job_id=row["id"], message=MESSAGE_TIMEOUT, provider_error="deadline passed")


def _poller_lease() -> timedelta:
    return timedelta(seconds=max(10, 5 * settings.JOB_POLL_INTERVAL))


def poller_kick() -> bool:
    """Make sure a poller runs: enqueue one unless one holds the lease or was enqueued in the
    last few seconds (a burst of jobs enqueues one). True if this call enqueued it."""
    now = timezone.now()
    PredictionPoller.objects.get_or_create(name=POLLER)
    kicked = (
        PredictionPoller.objects.filter(name=POLLER)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .filter(Q(kicked_at__isnull=True) | Q(kicked_at__lt=now - timedelta(seconds=10)))
        .update(kicked_at=now)
    )
    if kicked:
        poller_enqueue()
    return bool(kicked)


def predictions_poll(*, max_seconds: float | None = None, idle_seconds: float | None = None) -> dict[str, int]:
    """The poller: passes every JOB_POLL_INTERVAL seconds while predictions run, for up to
    `max_seconds`, then hands over to a fresh task (so a deploy or a dead worker costs one
    lease, about 10 s). One poller at a time, by the lease row."""
    max_seconds = settings.JOB_POLLER_RUN_SECONDS if max_seconds is None else max_seconds
    idle_seconds = settings.JOB_POLLER_IDLE_SECONDS if idle_seconds is None else idle_seconds
    holder = uuid.uuid4().hex
    now = timezone.now()
    PredictionPoller.objects.get_or_create(name=POLLER)
    taken = (
        PredictionPoller.objects.filter(name=POLLER)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(holder=holder))
        .update(holder=holder, lease_until=now + _poller_lease())
    )
    if not taken:
        return {"passes": 0, "running": 0}
    passes = running = 0
    until = time.monotonic() + max_seconds
    idle_since: float | None = None
    try:
        while True:
            started = time.monotonic()
            running = predictions_poll_pass()
            passes += 1
            kept = PredictionPoller.objects.filter(name=POLLER, holder=holder).update(
                lease_until=timezone.now() + _poller_lease(), last_pass_at=timezone.now(), passes=F("passes") + 1
            )
            if not kept:
                return {"passes": passes, "running": running}  # another poller took over
            idle_since = (idle_since or started) if not running else None
            if (idle_since is not None and started - idle_since >= idle_seconds) or time.monotonic() >= until:
                break
            time.sleep(max(0.0, settings.JOB_POLL_INTERVAL - (time.monotonic() - started)))
    finally:
        PredictionPoller.objects.filter(name=POLLER, holder=holder).update(lease_until=None, kicked_at=None)
    # A job handed off just as this poller stopped saw the lease still held and did not kick.
    if has_running_predictions():
        poller_kick()
    return {"passes": passes, "running": running}


def has_running_predictions() -> bool:
    return (
        Job.objects.filter(status=Status.RUNNING, provider=AIModel.Provider.REPLICATE)
        .exclude(prediction_id="")
        .exists()
    )
