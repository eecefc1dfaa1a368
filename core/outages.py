"""A clear 503 page while Redis (cache, rate limits, queue) is unreachable, instead of a 500."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.template import loader
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 60


class ServiceUnavailableMiddleware:
    """Turns a view's Redis connection error into a 503 page that says to try again shortly.

    Pages that need no cache (landing, legal, health, signed-in pages and signing out, thanks
    to core.sessions) keep working; what needs Redis (rate-limited forms) says so plainly. Nothing was charged by a request that failed this way: rate limits are checked
    before any write, and a job whose enqueue fails is kept (the sweeper sends it again)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, RedisConnectionError | RedisTimeoutError):
            return None
        logger.error("Redis is unavailable: %s %s answered 503 (%s)", request.method, request.path, exception)
        # Rendered without the request: its context processors would read the session again.
        body = loader.get_template("503.html").render({})
        response = HttpResponse(body, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
