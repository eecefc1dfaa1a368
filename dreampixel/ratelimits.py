from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django_ratelimit.decorators import ratelimit


def limit_posts(view: Callable, *, rate_setting: str, group: str) -> Callable:
    """Limit a view's POSTs per client IP; the rate is read from settings on every request."""

    def rate(group: str, request) -> str:
        return getattr(settings, rate_setting)

    return ratelimit(group=group, key="ip", rate=rate, method="POST", block=True)(view)
