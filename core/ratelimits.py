from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django_ratelimit.decorators import ratelimit


def limit_posts(view: Callable, *, rate_setting: str, group: str, key: str = "ip") -> Callable:
    """Limit a view's POSTs per client IP (or per user); the rate is read from settings on
    every request, so tests and operators can change it."""

    def rate(group: str, request) -> str:
        return getattr(settings, rate_setting)

    return ratelimit(group=group, key=key, rate=rate, method="POST", block=True)(view)


def limit_job_creation(view: Callable) -> Callable:
    """Job submissions: per user and per IP (RATELIMIT_JOBS_PER_USER, RATELIMIT_JOBS_PER_IP)."""
    view = limit_posts(view, rate_setting="RATELIMIT_JOBS_PER_IP", group="jobs-ip", key="ip")
    return limit_posts(view, rate_setting="RATELIMIT_JOBS_PER_USER", group="jobs-user", key="user")


def limit_uploads(view: Callable) -> Callable:
    """Requests that carry photos, counted apart from job submissions: each may hold ten photos
    for the workers to decode (RATELIMIT_UPLOADS_PER_USER, RATELIMIT_UPLOADS_PER_IP). A POST
    without files (a text-to-image job: its form is multipart too) is not counted here. Reading
    request.FILES parses the form once; the view reads the same parse."""

    def rate(setting: str) -> Callable:
        def for_request(group: str, request) -> str | None:
            return getattr(settings, setting) if request.FILES else None

        return for_request

    view = ratelimit(group="uploads-ip", key="ip", rate=rate("RATELIMIT_UPLOADS_PER_IP"), method="POST", block=True)(
        view
    )
    return ratelimit(
        group="uploads-user", key="user", rate=rate("RATELIMIT_UPLOADS_PER_USER"), method="POST", block=True
    )(view)
