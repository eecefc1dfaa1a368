"""Branded emails: the site's own name and public address, in plain text and HTML."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.html import linebreaks, urlize
from django.utils.safestring import mark_safe

from core.links import site_base_url

SITE_NAME = "Dream Pixel"


@dataclass(frozen=True)
class SiteBrand:
    """What allauth's templates read as `current_site`, from the settings instead of the
    request's Host header (which says 127.0.0.1:8000 behind a proxy or in development)."""

    name: str
    domain: str
    url: str


def site_brand(request: HttpRequest | None = None) -> SiteBrand:
    url = site_base_url(request)
    return SiteBrand(name=SITE_NAME, domain=urlsplit(url).netloc or SITE_NAME, url=url)


def html_from_text(text: str, *, subject: str = "") -> str:
    """The HTML part of an email: the text's paragraphs, links made clickable, in the site's frame."""
    # urlize escapes the text itself (autoescape=True), so the result is safe to mark so.
    body = mark_safe(linebreaks(urlize(text, autoescape=True), autoescape=False))
    return render_to_string("emails/base.html", {"body": body, "subject": subject, "site": site_brand()})
