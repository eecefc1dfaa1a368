"""The first gate every request passes: its size and its characters, before anything reads it."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.urls import Resolver404, resolve
from django.utils.cache import patch_cache_control

from core.registry import Registry

# Views that take uploads may receive more than REQUEST_MAX_BYTES: their limit in bytes, by URL
# name, registered by the app that owns the view.
UPLOAD_BODY_LIMITS: Registry[int] = Registry("upload body limits")


def _limit_for(request: HttpRequest) -> int:
    try:
        name = resolve(request.path_info).url_name
    except Resolver404:
        return settings.REQUEST_MAX_BYTES
    return max(UPLOAD_BODY_LIMITS.get(name or "") or 0, settings.REQUEST_MAX_BYTES)


def _has_nul(values: Callable[[], Iterable[tuple[str, list[str]]]]) -> bool:
    return any("\x00" in key or any("\x00" in value for value in items) for key, items in values())


class RequestGateMiddleware:
    """Refuse, before the body is read: a body over the limit (413), and NUL characters in the
    path, the query string or form fields (400). PostgreSQL cannot store NUL in text, so it
    would otherwise reach the database as a 500 deep inside some view."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return HttpResponseBadRequest("Bad Content-Length.", content_type="text/plain")
        # Only a large body costs a URL lookup: most requests are far below every limit.
        if length > settings.REQUEST_MAX_BYTES and length > _limit_for(request):
            # No "Connection: close" (a hop-by-hop header WSGI servers refuse): gunicorn's sync
            # workers close the connection after every response, the unread body with it.
            return HttpResponse("Request body too large.", status=413, content_type="text/plain")
        if "\x00" in request.path_info or _has_nul(request.GET.lists):
            return HttpResponseBadRequest("Bad characters in the address.", content_type="text/plain")
        if request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            if request.content_type == "multipart/form-data" and length > settings.REQUEST_MAX_BYTES:
                # A photo upload: not buffered here; its form refuses NUL in every field.
                return self.get_response(request)
            # Read through request.body (at most REQUEST_MAX_BYTES) so that the view can still
            # read the raw body: parsing a multipart stream would use it up.
            request.body  # noqa: B018
            if _has_nul(request.POST.lists):
                return HttpResponseBadRequest("Bad characters in the form.", content_type="text/plain")
        return self.get_response(request)


class PrivatePagesMiddleware:
    """A response made for a signed-in person is `Cache-Control: private, no-store`: `Vary: Cookie`
    alone lets a shared cache (a CDN, a corporate proxy) keep a billing page or a gallery under
    one person's cookie, and the browser keep it on disk after sign-out. A view that chose its
    own Cache-Control (a shared picture: public for a minute) keeps it. Placed after the session
    middleware; a request that never read its session (static files, health) is left alone."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = getattr(request, "session", None)
        # `accessed` first: `in` would load a session the request never read.
        signed_in = session is not None and session.accessed and SESSION_KEY in session
        if signed_in and not response.has_header("Cache-Control"):
            patch_cache_control(response, private=True, no_store=True)
        return response
