"""Replicate, several API tokens rotating. Predictions are read from Replicate's JSON as it is.

The official client's prediction model is stricter than the API: replicate 1.0.7 (the newest
release) accepts five statuses and raises a pydantic error on `aborted`, a final status Replicate
documents, for a get and for a whole list page (the list covers the account, runs from the
website included). So the provider sends its requests through the client's own HTTP transport
(the same retries of idempotent requests on 429, 503 and 504) and reads each prediction itself:
an unknown status reads as still running, an item it cannot read is skipped, never raised. The
client is still used to upload a photo in an input (its file API).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import ssl
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import httpx
import replicate
from replicate.client import RetryTransport
from replicate.exceptions import ReplicateError
from replicate.helpers import encode_json

from generation.providers.base import (
    MalformedPrediction,
    OutputUnavailable,
    Prediction,
    PredictionNotFound,
    PredictionRequest,
    ProviderError,
    ProviderUnavailable,
    decode_data_url,
)

logger = logging.getLogger("generation.providers")

DEFAULT_BASE_URL = "https://api.replicate.com"
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


def _as_list(output: Any) -> list[str]:
    if output is None:
        return []
    if isinstance(output, str):
        return [output]
    if isinstance(output, list | tuple):
        return [str(item) for item in output if item]
    if isinstance(output, dict):  # some models answer {"video": url} or similar
        return [str(value) for value in output.values() if isinstance(value, str)]
    return [str(output)]


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client of this process: building one reads the whole CA bundle
    (tens of milliseconds of CPU), and a context is safe to share between clients and threads."""
    return httpx.create_ssl_context()


class _TimeoutFloor(httpx.BaseTransport):
    """The client sends a create without `Prefer: wait` with no timeout at all (a hung API
    would hang the worker); this puts the client's own timeout on any request without one."""

    def __init__(self, timeout: httpx.Timeout):
        self._inner = httpx.HTTPTransport(verify=_tls())
        self._timeout = timeout.as_dict()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if (request.extensions.get("timeout") or {}).get("read") is None:
            request.extensions["timeout"] = self._timeout
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def _timestamp(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value or "").replace("Z", "+00:00"))
    except ValueError:
        return None


def _created_at(item: dict) -> datetime | None:
    return _timestamp(item.get("created_at"))


def _job_marker(item: dict) -> str:
    inputs = item.get("input")
    return str(inputs.get(JOB_INPUT_KEY) or "") if isinstance(inputs, dict) else ""


def prediction_from_json(data: Any) -> Prediction:
    """A prediction as Replicate's JSON shows it, read leniently: only an object with an id is
    required. An unknown status stays as it is (read as still running); odd fields read empty."""
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        raise MalformedPrediction(f"Replicate answered something that is not a prediction: {str(data)[:200]}")
    status = data.get("status")
    metrics = data.get("metrics")
    error = data.get("error")
    return Prediction(
        id=data["id"][:100],
        status=status[:32] if isinstance(status, str) else "",
        outputs=_as_list(data.get("output")),
        error="" if error is None else str(error),
        metrics=dict(metrics) if isinstance(metrics, dict) else {},
        job_id=_job_marker(data),
        # When the prediction ended: the metrics measure how long its job took to finish after it.
        completed_at=_timestamp(data.get("completed_at")),
    )


class _Api:
    """One API token: a plain HTTP client on the official client's retrying transport, and the
    official client itself for what it does well (uploading a photo named in an input)."""

    def __init__(self, token: str, *, base_url: str | None, timeout: httpx.Timeout):
        self.client = replicate.Client(
            api_token=token, base_url=base_url, timeout=timeout, transport=_TimeoutFloor(timeout)
        )
        self.http = httpx.Client(
            base_url=base_url or DEFAULT_BASE_URL,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "dreampixel"},
            timeout=timeout,
            transport=RetryTransport(wrapped_transport=httpx.HTTPTransport(verify=_tls())),
        )

    def request(self, method: str, path: str, **options: Any) -> Any:
        """The JSON of an answer; ReplicateError for an error status (as the client raises it),
        MalformedPrediction for a body that is not JSON."""
        response = self.http.request(method, path, **options)
        if response.status_code >= 400:
            raise ReplicateError.from_response(response)
        try:
            return response.json()
        except ValueError as error:
            raise MalformedPrediction(
                f"Replicate answered {response.status_code} with a body that is not JSON"
            ) from error

    def get(self, prediction_id: str) -> Prediction:
        return prediction_from_json(self.request("GET", f"/v1/predictions/{prediction_id}"))

    def cancel(self, prediction_id: str) -> None:
        self.request("POST", f"/v1/predictions/{prediction_id}/cancel")


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
            token_fingerprint(token): _Api(token, base_url=base_url, timeout=self._timeout) for token in tokens
        }
        self._rotation = itertools.cycle(list(self._clients))
        self._lock = threading.Lock()
        # `Prefer: wait` holds the create answer until the prediction is done or this many
        # seconds pass; the job asks for it only for models that usually finish by then.
        self.create_wait = create_wait
        # One client for output downloads, not one per call: httpx clients are thread-safe.
        self._downloads = httpx.Client(timeout=self._timeout, follow_redirects=True, verify=_tls())

    def token_for_new(self) -> str:
        with self._lock:
            return next(self._rotation)

    def _clients_for(self, token: str) -> list[_Api]:
        # A token no longer configured (rotated out), or a job from before tokens were
        # recorded: try each; the one whose account made the prediction answers.
        if token in self._clients:
            return [self._clients[token]]
        return list(self._clients.values())

    def create(self, request: PredictionRequest, *, token: str = "") -> Prediction:
        provider_input = dict(request.input)
        if request.job_id:
            provider_input[JOB_INPUT_KEY] = request.job_id
        api = self._clients_for(token)[0]
        options: dict[str, Any] = {}
        if request.wait:
            # As the client sends it: Replicate holds the answer up to N seconds.
            options["headers"] = {"Prefer": f"wait={int(request.wait)}"}
            options["timeout"] = httpx.Timeout(self._timeout.connect, read=int(request.wait) + 0.5)
        try:
            body: dict[str, Any] = {"input": encode_json(provider_input, api.client)}
            if request.webhook_url:
                body |= {"webhook": request.webhook_url, "webhook_events_filter": ["completed"]}
            if ":" in request.model_ref:
                body["version"] = request.model_ref.split(":", 1)[1]
                answer = api.request("POST", "/v1/predictions", json=body, **options)
            else:
                answer = api.request("POST", f"/v1/models/{request.model_ref}/predictions", json=body, **options)
        except (ReplicateError, httpx.TransportError) as error:
            translated = _translate(error)
            # A 404 here (only Replicate answers one) is e.g. an unknown model: not a lookup.
            if isinstance(translated, PredictionNotFound) and isinstance(error, ReplicateError):
                translated = ProviderError(f"Replicate refused the request (404): {error.detail or ''}".strip())
            if isinstance(translated, ProviderUnavailable):
                answered_4xx = isinstance(error, ReplicateError) and 400 <= (error.status or 0) < 500
                translated.maybe_created = not (answered_4xx or isinstance(error, httpx.ConnectError))
            raise translated from error
        return prediction_from_json(answer)

    def _on_its_account(self, token: str, call: Callable[[_Api], T]) -> T:
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
        return self._on_its_account(token, lambda api: api.get(prediction_id))

    def cancel(self, prediction_id: str, *, token: str = "") -> None:
        self._on_its_account(token, lambda api: api.cancel(prediction_id))

    def _list_since(self, api: _Api, since: datetime, max_pages: int) -> tuple[list[dict], bool]:
        """List pages newest first until one reaches back past `since`; also whether it did.
        A list that answers 404 (a provider without it) is trouble to retry, never an answer.
        Items come back as Replicate's JSON: one that is not a prediction is left out here."""
        found: list[dict] = []
        try:
            page = api.request("GET", "/v1/predictions")
            for number in range(max_pages):
                if not isinstance(page, dict):
                    raise MalformedPrediction("Replicate's prediction list is not an object")
                results = page.get("results")
                results = results if isinstance(results, list) else []
                items = [item for item in results if isinstance(item, dict) and isinstance(item.get("id"), str)]
                if len(items) < len(results):
                    logger.warning(
                        "Replicate's list held %s item(s) that are not predictions", len(results) - len(items)
                    )
                found += items
                oldest = _created_at(items[-1]) if items else None
                following = page.get("next")
                if not following or not isinstance(following, str) or (oldest is not None and oldest < since):
                    return found, True
                if number + 1 < max_pages:
                    # The cursor is an opaque link to the next page, on the API's own host.
                    page = api.request("GET", following)
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
                if _job_marker(candidate) == request.job_id:
                    return prediction_from_json(candidate)
            if not reached:
                raise ProviderUnavailable("The prediction list is too long to search back that far.")
        return None

    def recent(self, *, since: datetime, token: str = "", max_pages: int = 3) -> tuple[dict[str, Prediction], bool]:
        # The poller's batch: one list call shows up to 100 predictions' states.
        candidates, reached = self._list_since(self._clients_for(token)[0], since, max_pages)
        return {candidate["id"]: prediction_from_json(candidate) for candidate in candidates}, reached

    def webhook_secret(self) -> str:
        api = next(iter(self._clients.values()))
        try:
            answer = api.request("GET", "/v1/webhooks/default/secret")
        except (ReplicateError, httpx.TransportError) as error:
            raise _translate(error) from error
        if not isinstance(answer, dict) or not isinstance(answer.get("key"), str):
            raise ProviderError("Replicate's webhook secret answer has no key.")
        return answer["key"]

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
