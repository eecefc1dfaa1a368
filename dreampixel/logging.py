"""Log records carry the request, user and job they belong to.

A context variable holds those ids for the current request or task; a filter copies them onto
every record, so the JSON formatter (production) and the plain one (development) can show them.
"""

from __future__ import annotations

import contextvars
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.http import HttpRequest, HttpResponse

_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("log_context", default={})  # noqa: B039


def log_context() -> dict[str, str]:
    return _context.get()


@contextmanager
def bound(**ids: object) -> Iterator[None]:
    """Add ids (job_id=..., user_id=...) to every log record written inside the block."""
    token = _context.set({**_context.get(), **{key: str(value) for key, value in ids.items() if value is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key in ("request_id", "user_id", "job_id"):
            if not hasattr(record, key):
                setattr(record, key, _context.get().get(key, "-"))
        return True


class RequestIdMiddleware:
    """Gives each request an id (or keeps the load balancer's X-Request-ID) for its logs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if 8 <= len(incoming) <= 64 and incoming.isascii() else uuid.uuid4().hex
        user = getattr(request, "user", None)
        user_id = user.pk if user is not None and user.is_authenticated else None
        with bound(request_id=request_id, user_id=user_id):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response
