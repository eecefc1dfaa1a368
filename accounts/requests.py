"""Request types for views.

A view behind `@login_required` (or the admin) always has a signed-in User; annotating it with
AuthenticatedHttpRequest says so once, instead of narrowing `User | AnonymousUser` in every
view (the way healthchecks types its views). Every request passes django-htmx's middleware,
so each has `htmx` (the way django-htmx documents typing it).
"""

from __future__ import annotations

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

from accounts.models import User


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


class AuthenticatedHttpRequest(HtmxHttpRequest):
    user: User
