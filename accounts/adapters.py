from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings

from dreampixel.clientip import client_ip


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        return settings.EMAIL_LOGIN_ENABLED

    def get_client_ip(self, request) -> str:
        # allauth's limits count per client exactly as django-ratelimit's do (trusted proxies).
        return client_ip(request)


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def populate_user(self, request, sociallogin, data):
        # Our User has one `name` field instead of first/last name: fill it from Google.
        user = super().populate_user(request, sociallogin, data)
        name = data.get("name") or " ".join(part for part in (data.get("first_name"), data.get("last_name")) if part)
        user.name = (name or "").strip()[:150]
        return user
