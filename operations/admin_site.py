"""The back office's admin site: staff sign in through allauth and need two-factor auth."""

from __future__ import annotations

from allauth.account.decorators import secure_admin_login
from allauth.mfa.utils import is_mfa_enabled
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from operations.dashboard import dashboard


class AdminSite(admin.AdminSite):
    site_header = "Dream Pixel back office"
    site_title = "Dream Pixel"
    index_title = "Back office"
    # The home page lists every section; on the other pages the lists need the width more.
    enable_nav_sidebar = False

    def has_permission(self, request: HttpRequest) -> bool:
        # Staff status alone is not enough: the account must have a second factor.
        return super().has_permission(request) and is_mfa_enabled(request.user)

    def login(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        user = request.user
        if user.is_authenticated and user.is_active and user.is_staff and not is_mfa_enabled(user):
            messages.warning(
                request, "The back office needs two-factor authentication. Set up an authenticator app first."
            )
            return redirect("mfa_activate_totp")
        # Sign-in (password, then the second factor) happens on allauth's pages, not Django's.
        return secure_admin_login(super().login)(request, extra_context)

    def index(self, request: HttpRequest, extra_context=None) -> TemplateResponse:
        context = {"dashboard": dashboard(), "statuses": ["queued", "running", "succeeded", "failed", "canceled"]}
        return super().index(request, {**context, **(extra_context or {})})
