"""Replicate through its official client. Several API tokens may be configured: they rotate."""

from __future__ import annotations

import itertools
import threading
from datetime import datetime

import httpx
import replicate
from replicate.exceptions import ReplicateError

from generation.providers.base import (
    OutputUnavailable,
    Prediction,
    PredictionRequest,
    ProviderError,
    ProviderUnavailable,
    decode_data_url,
)

MAX_PAGES_SEARCHED = 5
# Statuses worth another try; others (401, 404, 422) will not get better by waiting.
TRANSIENT_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504}


def _translate(error: Exception) -> ProviderError:
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


class ReplicateProvider:
    name = "replicate"

    def __init__(self, *, tokens: list[str], base_url: str | None = None, timeout: float = 30.0, create_wait: int = 5):
        if not tokens:
            raise ValueError("ReplicateProvider needs at least one API token.")
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._clients = [
            replicate.Client(api_token=token, base_url=base_url, timeout=self._timeout) for token in tokens
        ]
        self._rotation = itertools.cycle(range(len(self._clients)))
        self._lock = threading.Lock()
        # `Prefer: wait` holds the create answer until the prediction is done or this many
        # seconds pass (fast models answer finished), and it is also the only way the client
        # puts a read timeout on create: without it a hung API would hang the worker.
        self._create_wait = create_wait
        # One client for output downloads: a new one per call builds a TLS context each time,
        # which cost ~35 ms of CPU per job in the pipeline benchmark. httpx clients are thread-safe.
        self._downloads = httpx.Client(timeout=self._timeout, follow_redirects=True)

    def _client(self) -> replicate.Client:
        with self._lock:
            return self._clients[next(self._rotation)]

    @staticmethod
    def _prediction(p) -> Prediction:
        return Prediction(
            id=p.id,
            status=p.status,
            outputs=_as_list(p.output),
            error=str(p.error or ""),
            metrics=dict(p.metrics or {}),
        )

    def create(self, request: PredictionRequest) -> Prediction:
        options: dict = {"input": request.input, "wait": self._create_wait}
        if request.webhook_url:
            options |= {"webhook": request.webhook_url, "webhook_events_filter": ["completed"]}
        client = self._client()
        try:
            if ":" in request.model_ref:
                _, version = request.model_ref.split(":", 1)
                prediction = client.predictions.create(version=version, **options)
            else:
                prediction = client.models.predictions.create(model=request.model_ref, **options)
        except (ReplicateError, httpx.TransportError) as error:
            raise _translate(error) from error
        return self._prediction(prediction)

    def get(self, prediction_id: str) -> Prediction:
        try:
            return self._prediction(self._client().predictions.get(prediction_id))
        except (ReplicateError, httpx.TransportError) as error:
            raise _translate(error) from error

    def cancel(self, prediction_id: str) -> None:
        try:
            self._client().predictions.cancel(prediction_id)
        except (ReplicateError, httpx.TransportError) as error:
            raise _translate(error) from error

    def find(self, request: PredictionRequest, *, since: datetime) -> Prediction | None:
        # Replicate takes no idempotency key, so a worker killed between "create" and saving the
        # id leaves a prediction nobody knows. The next worker looks for it among the recent
        # predictions (newest first) by model and by the request's plain input values.
        wanted = {k: v for k, v in request.input.items() if isinstance(v, str | int | float | bool)}
        model = request.model_ref.split(":", 1)[0]
        client = self._client()
        try:
            page = client.predictions.list()
            for _ in range(MAX_PAGES_SEARCHED):
                for candidate in page.results:
                    created = datetime.fromisoformat(str(candidate.created_at).replace("Z", "+00:00"))
                    if created < since:
                        return None
                    same_input = all((candidate.input or {}).get(k) == v for k, v in wanted.items())
                    if candidate.model == model and same_input:
                        return self._prediction(candidate)
                if not page.next:
                    return None
                page = client.predictions.list(cursor=page.next)
        except (ReplicateError, httpx.TransportError) as error:
            raise _translate(error) from error
        return None

    def webhook_secret(self) -> str:
        try:
            return self._client().webhooks.default.secret().key
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
