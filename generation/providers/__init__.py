"""Providers behind one small interface (base.Provider): Replicate, and the local renderer."""

from __future__ import annotations

from functools import cache

from django.conf import settings

from generation.providers.base import (  # noqa: F401  (the interface, re-exported)
    FINAL_STATUSES,
    RUNNING_STATUSES,
    MalformedPrediction,
    OutputUnavailable,
    Prediction,
    PredictionNotFound,
    PredictionRequest,
    Provider,
    ProviderError,
    ProviderUnavailable,
)


@cache
def _provider(name: str, config: tuple) -> Provider:
    # Each provider's module is imported when it is first used: a site runs one of them, and the
    # other's libraries (replicate's client, or the preview renderer's video encoder) cost start-up time.
    if name == "replicate":
        from generation.providers.replicate import ReplicateProvider  # noqa: PLC0415

        tokens, base_url, timeout, create_wait = config
        return ReplicateProvider(
            tokens=list(tokens), base_url=base_url or None, timeout=timeout, create_wait=create_wait
        )
    if name == "local":
        from generation.providers.local import LocalProvider  # noqa: PLC0415

        (delay,) = config
        return LocalProvider(delay=delay)
    raise ProviderError(f"Unknown provider {name!r}.")


def get_provider(name: str) -> Provider:
    # Keyed by the settings it was built from, so tests that change settings get a new one.
    config: tuple[object, ...]
    if name == "replicate":
        config = (
            tuple(settings.REPLICATE_API_TOKENS),
            settings.REPLICATE_BASE_URL,
            settings.REPLICATE_TIMEOUT,
            settings.REPLICATE_CREATE_WAIT,
        )
    elif name == "local":
        config = (settings.LOCAL_RENDER_DELAY,)
    else:
        config = ()
    return _provider(name, config)


def provider_available(name: str) -> bool:
    if name == "replicate":
        return bool(settings.REPLICATE_API_TOKENS)
    if name == "local":
        return settings.LOCAL_RENDERER_ENABLED
    return False
