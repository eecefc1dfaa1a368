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
from pythonjsonlogger.json import JsonFormatter

# Every JSON line: when, how bad, which logger, the message, and the ids of what it belongs to.
APPLICATION_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(user_id)s %(job_id)s"

# An id, or a callable that gives it when a line is written (the user, looked up lazily).
ContextValue = str | Callable[[], str]
_context: contextvars.ContextVar[dict[str, ContextValue]] = contextvars.ContextVar("log_context", default={})  # noqa: B039


def log_context() -> dict[str, ContextValue]:
    return _context.get()


def log_context_clear() -> None:
    # gunicorn calls it as a request starts (gunicorn.conf.py): a line logged before Django has
    # given the request its id then says "-" instead of the previous request's id.
    _context.set({})


def json_formatter(fields: str = APPLICATION_FIELDS) -> JsonFormatter:
    """One JSON object a line; the application's (settings.LOGGING) and gunicorn's alike. Fields a
    record carries beyond `fields` (an access line's method, path, status...) are added."""
    return JsonFormatter(fields, rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})


@contextmanager
def bound(**ids: ContextValue | int | None) -> Iterator[None]:
    """Add ids (job_id=..., user_id=...) to every log record written inside the block. A value
    may be a callable, called when a record is written."""
    values: dict[str, ContextValue] = {
        key: value if callable(value) else str(value) for key, value in ids.items() if value is not None
    }
    token = _context.set({**_context.get(), **values})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get()
        for key in ("request_id", "user_id", "job_id"):
            if not hasattr(record, key):
                value = context.get(key, "-")
                setattr(record, key, value() if callable(value) else value)
        return True


def _user_id_of(request: HttpRequest) -> Callable[[], str]:
    # Resolved only when a line is logged: looking the user up for every request would cost a
    # query on pages that never need them.
    def user_id() -> str:
        user = getattr(request, "user", None)
        return str(user.pk) if user is not None and user.is_authenticated else "-"

    return user_id


class RequestIdMiddleware:
    """Gives each request an id (or keeps the load balancer's X-Request-ID) for its logs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if 8 <= len(incoming) <= 64 and incoming.isascii() else uuid.uuid4().hex
        # Runs before authentication: the user is looked up when (and if) a line is logged.
        # Set, not reset at the end: Django logs 4xx/5xx responses ("django.request") after the
        # middleware has returned. The next request on this thread sets its own.
        _context.set({"request_id": request_id, "user_id": _user_id_of(request)})
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response
