"""Replicate's webhooks: verified, deduplicated by delivery id, then the job is synced."""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from replicate.webhook import Webhooks, WebhookSigningSecret

from core.jsonbodies import json_body_parse, short_text
from core.metrics import webhook_refused
from generation.models import Job, ProviderWebhook
from generation.providers import RUNNING_STATUSES, Prediction, ProviderError, get_provider
from generation.providers.replicate import JOB_INPUT_KEY, ReplicateProvider
from generation.queue import job_sync_enqueue
from generation.services.running import job_adopt_prediction

logger = logging.getLogger(__name__)
SECRET_CACHE_KEY = "replicate-webhook-secret"  # noqa: S105 (a cache key, not a secret)


def webhook_secret() -> str:
    if settings.REPLICATE_WEBHOOK_SECRET:
        return settings.REPLICATE_WEBHOOK_SECRET
    secret = cache.get(SECRET_CACHE_KEY)
    if secret is None:
        provider = get_provider("replicate")
        assert isinstance(provider, ReplicateProvider)  # what get_provider("replicate") builds
        secret = provider.webhook_secret()
        cache.set(SECRET_CACHE_KEY, secret, 60 * 60 * 24)
    return secret


@csrf_exempt
@require_POST
def replicate_webhook(request: HttpRequest) -> HttpResponse:
    if not settings.REPLICATE_API_TOKENS:
        return JsonResponse({"error": "Replicate is not configured"}, status=404)
    try:
        secret = webhook_secret()
    except ProviderError:
        # Replicate will deliver again; answer 503 so it does.
        return JsonResponse({"error": "webhook secret unavailable"}, status=503)
    headers = {name: request.headers.get(name, "") for name in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    try:
        body = request.body.decode("utf-8")
        Webhooks.validate(
            headers=headers,
            body=body,
            secret=WebhookSigningSecret(key=secret),
            tolerance=settings.REPLICATE_WEBHOOK_TOLERANCE,
        )
        # Signed is not the same as well-formed: what we store must fit its column, and nothing
        # may be nested deeper than we read or hold text PostgreSQL cannot store. Only the ids
        # and the status are stored: a NUL elsewhere (the logs) does no harm.
        payload = json_body_parse(body, nul_allowed=True)
        if not isinstance(payload, dict):
            raise ValueError("not a prediction")
        prediction_id = short_text(payload.get("id"), max_length=100)
        status = payload.get("status", "")
        if not isinstance(status, str):
            raise ValueError("a status that is not text")
        status = status[:32]
        short_text(headers["webhook-id"], max_length=100)
        if "\x00" in prediction_id + status + headers["webhook-id"]:
            raise ValueError("NUL in an id")
        # Our job's id rides in the webhook URL and in the prediction's input.
        named_job = uuid.UUID(request.GET["job"]) if request.GET.get("job") else None
        prediction_input = payload.get("input") or {}
        if not isinstance(prediction_input, dict):
            raise ValueError("an input that is not an object")
        marker = str(prediction_input.get(JOB_INPUT_KEY) or "")
    except (ValueError, KeyError, TypeError) as error:  # bad signature, stale, or not a prediction
        logger.warning("rejected a Replicate webhook: %s", type(error).__name__)
        webhook_refused("replicate")
        return JsonResponse({"error": "invalid webhook"}, status=400)

    # The delivery's row is saved first and marked processed only once its work is done: a
    # redelivery of a webhook that failed in between (the queue down, a cut connection) does
    # the work again instead of being taken for a duplicate. Two deliveries racing may both
    # hand over a sync; syncing is idempotent.
    try:
        with transaction.atomic():
            ProviderWebhook.objects.create(webhook_id=headers["webhook-id"], prediction_id=prediction_id, status=status)
    except IntegrityError:
        if ProviderWebhook.objects.filter(webhook_id=headers["webhook-id"], processed_at__isnull=False).exists():
            return JsonResponse({"ok": True, "duplicate": True})
    job_id = (
        Job.objects.filter(prediction_id=prediction_id, status=Job.Status.RUNNING).values_list("pk", flat=True).first()
    )
    if job_id is None and named_job is not None:
        # The worker was interrupted before it saved the prediction id: adopt it here.
        prediction = Prediction(id=prediction_id, status=status, job_id=marker)
        if job_adopt_prediction(job_id=named_job, prediction=prediction):
            job_id = named_job
    # Any status but the two of a running prediction: `aborted`, and a final status Replicate may
    # add one day, are settled by asking Replicate (an unknown one reads as running, and the
    # job's deadline ends it).
    if job_id and status not in RUNNING_STATUSES:
        job_sync_enqueue(job_id)  # raises if the queue is down: a 500, and Replicate delivers again
    ProviderWebhook.objects.filter(webhook_id=headers["webhook-id"]).update(processed_at=timezone.now())
    return JsonResponse({"ok": True})
