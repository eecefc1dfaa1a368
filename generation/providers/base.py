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


class OutputUnavailable(ProviderError):
    """The provider said it succeeded but its output could not be fetched (e.g. expired)."""


@dataclass(frozen=True)
class Prediction:
    id: str
    # "starting" | "processing" | "succeeded" | "failed" | "canceled"
    status: str
    outputs: list[str] = field(default_factory=list)
    error: str = ""
    metrics: dict = field(default_factory=dict)

    @property
    def is_final(self) -> bool:
        return self.status in ("succeeded", "failed", "canceled")


@dataclass(frozen=True)
class PredictionRequest:
    model_ref: str
    input: dict
    webhook_url: str | None = None


class Provider(Protocol):
    name: str

    def create(self, request: PredictionRequest) -> Prediction: ...

    def get(self, prediction_id: str) -> Prediction: ...

    def cancel(self, prediction_id: str) -> None: ...

    def find(self, request: PredictionRequest, *, since: datetime) -> Prediction | None:
        """A prediction made for this request since then: one a killed worker created but
        never got to record."""

    def fetch_output(self, url: str) -> bytes: ...


def decode_data_url(url: str) -> bytes:
    _, _, payload = url.partition(",")
    return base64.b64decode(payload)
