"""The project's URLs plus `/bench/minimal/`: the smallest Django view, behind the same middleware.

`/bench/minimal/signed-in/` is the same behind `login_required`: the floor of any signed-in page
(the session and the user are loaded from the database)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def minimal(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("bench/minimal/", minimal, name="bench_minimal"),
    path("bench/minimal/signed-in/", login_required(minimal), name="bench_minimal_signed_in"),
    path("", include("dreampixel.urls")),
]
