"""Request types for views.

A view behind `@login_required` (or the admin) always has a signed-in User; annotating it with
AuthenticatedHttpRequest says so once, instead of narrowing `User | AnonymousUser` in every
view (the way healthchecks types its views).
"""

from __future__ import annotations

from django.http import HttpRequest

from accounts.models import User


class AuthenticatedHttpRequest(HttpRequest):
    user: User
