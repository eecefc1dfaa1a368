"""The small interface every provider implements, and the errors the task understands."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


class ProviderError(Exception):
    """The provider refused or failed for good (bad input, auth, unknown model)."""


class ProviderUnavailable(ProviderError):
    """Trouble that may pass: a timeout, a 5xx, a 429. Worth retrying with backoff."""

    # For a create: whether the request may have reached the provider and made a prediction
    # (a timeout, a 5xx) rather than surely not (refused with a 4xx such as 429, no connection).
    maybe_created = True


class PredictionNotFound(ProviderError):
    """The provider does not know this prediction (to the token asked): 404."""


class OutputUnavailable(ProviderError):
    """The provider said it succeeded but its output could not be fetched (e.g. expired)."""


class MalformedPrediction(ProviderError):
    """The provider answered with something that is not a prediction we can read (no id, not an
    object): nothing to act on, and asking again will not change it."""


# The statuses a prediction ends in. Replicate documents `aborted` (its deadline passed before it
# started; not billed) beside the other three. Any other status is read as still running: the
# job's deadline ends it, so a status nobody has seen yet never wedges a job.
FINAL_STATUSES = frozenset({"succeeded", "failed", "canceled", "aborted"})
RUNNING_STATUSES = frozenset({"starting", "processing"})


@dataclass(frozen=True)
class Prediction:
    id: str
    # "starting" | "processing" | one of FINAL_STATUSES; anything else reads as still running
    status: str
    outputs: list[str] = field(default_factory=list)
    error: str = ""
    metrics: dict = field(default_factory=dict)
    # The job the prediction was made for, as it travels with the prediction (see JOB_INPUT_KEY).
    job_id: str = ""
    # When the provider says it finished; None while it runs, or when the provider does not say.
    completed_at: datetime | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass(frozen=True)
class PredictionRequest:
    model_ref: str
    input: dict
    webhook_url: str | None = None
    # Our job's id: it travels with the prediction, so the job can find exactly its own
    # prediction again after any interruption (and nobody else's).
    job_id: str = ""
    # Seconds the provider may hold the create for a fast prediction to finish; 0: answer at once.
    wait: int = 0


class Provider(Protocol):
    """`token` names which of the provider's API tokens to use, by fingerprint (never the
    token itself): the one that created a prediction is the one that can see it."""

    name: str
    # True when create() does the whole work in this process (the preview renderer): there is
    # no prediction elsewhere to ask about, so a job taken over from a dead worker draws again.
    draws_in_create: bool

    def token_for_new(self) -> str:
        """The fingerprint of the token the next create should use (the rotation)."""

    def create(self, request: PredictionRequest, *, token: str = "") -> Prediction: ...

    def get(self, prediction_id: str, *, token: str = "") -> Prediction: ...

    def cancel(self, prediction_id: str, *, token: str = "") -> None: ...

    def find(self, request: PredictionRequest, *, since: datetime, token: str = "") -> Prediction | None:
        """The prediction made for this request's job since then: one an interrupted worker
        created but never got to record. None only when the provider says there is none;
        trouble looking raises ProviderUnavailable."""

    def recent(self, *, since: datetime, token: str = "", max_pages: int = 3) -> tuple[dict[str, Prediction], bool]:
        """Predictions created since then, by id, in a few list calls; and whether the pages
        read reached back to `since` (if not, ask about the others one by one)."""

    def fetch_output(self, url: str) -> bytes: ...


def decode_data_url(url: str) -> bytes:
    _, _, payload = url.partition(",")
    return base64.b64decode(payload)
