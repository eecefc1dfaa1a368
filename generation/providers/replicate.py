"""Replicate through its official client. Several API tokens may be configured: they rotate."""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

import httpx
import replicate
from replicate.exceptions import ReplicateError

from generation.providers.base import (
    OutputUnavailable,
    Prediction,
    PredictionNotFound,
    PredictionRequest,
    ProviderError,
    ProviderUnavailable,
    decode_data_url,
)

MAX_PAGES_SEARCHED = 5
# The job's id travels in the prediction's input under this key. Replicate's reference
# documents `input` in the predictions list (the webhook URL is not there), and Replicate
# ignores inputs a model does not declare, so the list shows which job a prediction is for.
JOB_INPUT_KEY = "dreampixel_job"
# How long a poll may look back through the list for a running prediction.
LIST_SLACK_SECONDS = 30
# Statuses worth another try; others (401, 404, 422) will not get better by waiting.
TRANSIENT_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504}

T = TypeVar("T")


def token_fingerprint(token: str) -> str:
    # What a job stores to name its token: enough to tell tokens apart, useless to a reader.
    return hashlib.sha256(token.encode()).hexdigest()[:12]


def _translate(error: Exception) -> ProviderError:
    if isinstance(error, ReplicateError) and error.status == 404:
        return PredictionNotFound(f"Replicate does not know this prediction (404): {error.detail or ''}".strip())
    if isinstance(error, ReplicateError):
        message = error.detail or error.title or f"Replicate answered {error.status}"
        if error.status in TRANSIENT_STATUSES or (error.status or 0) >= 500:
            return ProviderUnavailable(f"Replicate is unavailable ({error.status}): {message}")
        return ProviderError(f"Replicate refused the request ({error.status}): {message}")
    if isinstance(error, httpx.TransportError):  # timeouts and connection trouble
        return ProviderUnavailable(f"Could not reach Replicate: {type(error).__name__}")
    return ProviderError(str(error))


def _as_list(output) -> list[str]:
    if output is None:
        return []
    if isinstance(output, str):
        return [output]
    if isinstance(output, list | tuple):
        return [str(item) for item in output if item]
    if isinstance(output, dict):  # some models answer {"video": url} or similar
        return [str(value) for value in output.values() if isinstance(value, str)]
    return [str(output)]


class _TimeoutFloor(httpx.BaseTransport):
    """The client sends a create without `Prefer: wait` with no timeout at all (a hung API
    would hang the worker); this puts the client's own timeout on any request without one."""

    def __init__(self, timeout: httpx.Timeout):
        self._inner = httpx.HTTPTransport()
        self._timeout = timeout.as_dict()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if (request.extensions.get("timeout") or {}).get("read") is None:
            request.extensions["timeout"] = self._timeout
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def _timestamp(value) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _created_at(candidate) -> datetime:
    return _timestamp(candidate.created_at)


class ReplicateProvider:
    name = "replicate"
    draws_in_create = False  # predictions run at Replicate: a new worker asks about them

    def __init__(self, *, tokens: list[str], base_url: str | None = None, timeout: float = 30.0, create_wait: int = 5):
        if not tokens:
            raise ValueError("ReplicateProvider needs at least one API token.")
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        # By fingerprint: a job stores the fingerprint of the token that created its
        # prediction, and get, cancel and the lookup use that token (another account's token
        # gets 404 for it).
        self._clients = {
            token_fingerprint(token): replicate.Client(
                api_token=token, base_url=base_url, timeout=self._timeout, transport=_TimeoutFloor(self._timeout)
            )
            for token in tokens
        }
        self._rotation = itertools.cycle(list(self._clients))
        self._lock = threading.Lock()
        # `Prefer: wait` holds the create answer until the prediction is done or this many
        # seconds pass; the job asks for it only for models that usually finish by then.
        self.create_wait = create_wait
        # One client for output downloads: a new one per call builds a TLS context each time, a
        # noticeable share of a worker's CPU per job. httpx clients are thread-safe.
        self._downloads = httpx.Client(timeout=self._timeout, follow_redirects=True)

    def token_for_new(self) -> str:
        with self._lock:
            return next(self._rotation)

    def _clients_for(self, token: str) -> list[replicate.Client]:
        # A token no longer configured (rotated out), or a job from before tokens were
        # recorded: try each; the one whose account made the prediction answers.
        if token in self._clients:
            return [self._clients[token]]
        return list(self._clients.values())

    @staticmethod
    def _prediction(p) -> Prediction:
        return Prediction(
            id=p.id,
            status=p.status,
            outputs=_as_list(p.output),
            error=str(p.error or ""),
            metrics=dict(p.metrics or {}),
            job_id=str((p.input or {}).get(JOB_INPUT_KEY) or ""),
            completed_at=_timestamp(p.completed_at) if getattr(p, "completed_at", None) else None,
        )

    def create(self, request: PredictionRequest, *, token: str = "") -> Prediction:
        provider_input = dict(request.input)
        if request.job_id:
            provider_input[JOB_INPUT_KEY] = request.job_id
        options: dict = {"input": provider_input}
        if request.wait:
            options["wait"] = int(request.wait)
        if request.webhook_url:
            options |= {"webhook": request.webhook_url, "webhook_events_filter": ["completed"]}
        client = self._clients_for(token)[0]
        try:
            if ":" in request.model_ref:
                _, version = request.model_ref.split(":", 1)
                prediction = client.predictions.create(version=version, **options)
            else:
                prediction = client.models.predictions.create(model=request.model_ref, **options)
        except (ReplicateError, httpx.TransportError) as error:
            translated = _translate(error)
            # A 404 here (only Replicate answers one) is e.g. an unknown model: not a lookup.
            if isinstance(translated, PredictionNotFound) and isinstance(error, ReplicateError):
                translated = ProviderError(f"Replicate refused the request (404): {error.detail or ''}".strip())
            if isinstance(translated, ProviderUnavailable):
                answered_4xx = isinstance(error, ReplicateError) and 400 <= (error.status or 0) < 500
                translated.maybe_created = not (answered_4xx or isinstance(error, httpx.ConnectError))
            raise translated from error
        return self._prediction(prediction)

    def _on_its_account(self, token: str, call: Callable[[replicate.Client], T]) -> T:
        # A prediction is known only to the account that made it: another account's 404 means
        # "ask the next one"; any other error is the answer.
        not_found: ProviderError | None = None
        for client in self._clients_for(token):
            try:
                return call(client)
            except (ReplicateError, httpx.TransportError) as error:
                translated = _translate(error)
                if not isinstance(translated, PredictionNotFound):
                    raise translated from error
                not_found = translated
        raise not_found or PredictionNotFound("Replicate does not know this prediction.")

    def get(self, prediction_id: str, *, token: str = "") -> Prediction:
        return self._on_its_account(token, lambda client: self._prediction(client.predictions.get(prediction_id)))

    def cancel(self, prediction_id: str, *, token: str = "") -> None:
        self._on_its_account(token, lambda client: client.predictions.cancel(prediction_id))

    def _list_since(self, client: replicate.Client, since: datetime, max_pages: int) -> tuple[list, bool]:
        """List pages newest first until one reaches back past `since`; also whether it did.
        A list that answers 404 (a provider without it) is trouble to retry, never an answer."""
        found: list = []
        try:
            page = client.predictions.list()
            for number in range(max_pages):
                found += page.results
                if not page.next or (page.results and _created_at(page.results[-1]) < since):
                    return found, True
                if number + 1 < max_pages:
                    page = client.predictions.list(cursor=page.next)
        except (ReplicateError, httpx.TransportError) as error:
            if isinstance(error, ReplicateError) and error.status == 404:
                raise ProviderUnavailable("Replicate's prediction list is not available (404).") from error
            raise _translate(error) from error
        return found, False

    def find(self, request: PredictionRequest, *, since: datetime, token: str = "") -> Prediction | None:
        # Replicate takes no idempotency key, so a worker interrupted between "create" and
        # saving the id leaves a prediction only the list can show: the one whose input
        # carries this job's id. Never matched by inputs alone (two identical jobs would share).
        if not request.job_id:
            raise ValueError("find needs the job's id")
        for client in self._clients_for(token):
            candidates, reached = self._list_since(client, since, MAX_PAGES_SEARCHED)
            for candidate in candidates:
                if str((candidate.input or {}).get(JOB_INPUT_KEY) or "") == request.job_id:
                    return self._prediction(candidate)
            if not reached:
                raise ProviderUnavailable("The prediction list is too long to search back that far.")
        return None

    def recent(self, *, since: datetime, token: str = "", max_pages: int = 3) -> tuple[dict[str, Prediction], bool]:
        # The poller's batch: one list call shows up to 100 predictions' states.
        candidates, reached = self._list_since(self._clients_for(token)[0], since, max_pages)
        return {candidate.id: self._prediction(candidate) for candidate in candidates}, reached

    def webhook_secret(self) -> str:
        client = next(iter(self._clients.values()))
        try:
            return client.webhooks.default.secret().key
        except (ReplicateError, httpx.TransportError) as error:
            raise _translate(error) from error

    def fetch_output(self, url: str) -> bytes:
        if url.startswith("data:"):
            return decode_data_url(url)
        try:
            response = self._downloads.get(url)
        except httpx.TransportError as error:
            raise ProviderUnavailable(f"Could not download the output: {type(error).__name__}") from error
        if response.status_code in (403, 404, 410):
            raise OutputUnavailable(f"The output is gone from the provider ({response.status_code}).")
        if response.status_code >= 500 or response.status_code == 429:
            raise ProviderUnavailable(f"The output download failed ({response.status_code}).")
        if response.status_code != 200 or not response.content:
            raise OutputUnavailable(f"The output download failed ({response.status_code}).")
        return response.content
