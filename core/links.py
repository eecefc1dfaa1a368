"""The site's own absolute addresses: links in emails, Stripe's return pages, shared pages."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.http import HttpRequest


def site_base_url(request: HttpRequest | None = None) -> str:
    """The site's address, without a trailing slash.

    PUBLIC_BASE_URL when set (the address people reach, whatever Host a request came in on
    behind a proxy); else the request's; else, with no request (a worker sending an email),
    the first concrete name in ALLOWED_HOSTS, so a link in an email is never relative."""
    if settings.PUBLIC_BASE_URL:
        return settings.PUBLIC_BASE_URL
    if request is not None:
        return request.build_absolute_uri("/").rstrip("/")
    host = next((name.lstrip(".") for name in settings.ALLOWED_HOSTS if "*" not in name and name.lstrip(".")), "")
    if settings.PRODUCTION:
        return f"https://{host or 'localhost'}"
    return f"http://{host or 'localhost'}:{settings.DEV_SITE_PORT}"


def absolute_url(url: str, *, request: HttpRequest | None = None) -> str:
    """A path (or a URL, whose host is replaced) on the site's address: "/jobs/1/" ->
    "https://dreampixel.example.com/jobs/1/"."""
    parts = urlsplit(url)
    base = urlsplit(site_base_url(request))
    return urlunsplit((base.scheme, base.netloc, base.path + parts.path, parts.query, parts.fragment))
