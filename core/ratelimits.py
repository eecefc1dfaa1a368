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
