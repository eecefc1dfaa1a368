from __future__ import annotations

import contextlib

from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives

from accounts.mfa import secret_decrypt, secret_encrypt
from core.addresses import UnsafeAddress, email_canonical
from core.clientip import client_ip
from core.emails import html_from_text, site_brand
from core.links import absolute_url


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        # Email sign-up; Google's is the social adapter's below.
        return settings.EMAIL_LOGIN_ENABLED

    def authenticate(self, request, **credentials):
        # Google only: a password signs in staff alone (their accounts come from createsuperuser
        # and the admin); anyone else signs in with Google, as the sign-in page says.
        user = super().authenticate(request, **credentials)
        if user is not None and not settings.EMAIL_LOGIN_ENABLED and not user.is_staff:
            return None
        return user

    def clean_email(self, email: str) -> str:
        # Sign-up, adding an address and the reset form: the one spelling of the address
        # (core/addresses.py), so that one inbox is one account; what cannot be spelled one way
        # safely is refused with its reason.
        try:
            return email_canonical(super().clean_email(email))
        except UnsafeAddress as refused:
            raise ValidationError(str(refused)) from None

    # Emails name the site and link to its public address (PUBLIC_BASE_URL), not the Host
    # a request came in on; each has an HTML part next to the text.
    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        super().send_mail(template_prefix, email, {**context, "current_site": site_brand(self.request)})

    def render_mail(self, template_prefix, email, context, headers=None):
        message = super().render_mail(template_prefix, email, context, headers)
        if isinstance(message, EmailMultiAlternatives) and not message.alternatives:
            message.attach_alternative(html_from_text(message.body, subject=message.subject), "text/html")
        return message

    def get_email_confirmation_url(self, request, emailconfirmation) -> str:
        return absolute_url(super().get_email_confirmation_url(request, emailconfirmation), request=request)

    def get_reset_password_from_key_url(self, key: str) -> str:
        return absolute_url(super().get_reset_password_from_key_url(key), request=self.request)

    def get_client_ip(self, request) -> str:
        # allauth's limits count per client exactly as django-ratelimit's do (trusted proxies).
        return client_ip(request)


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request, sociallogin) -> bool:
        # allauth's default asks the account adapter, which answers for email sign-up: with email
        # sign-in off that would refuse every new Google user.
        return settings.GOOGLE_LOGIN_ENABLED

    def populate_user(self, request, sociallogin, data):
        # Our User has one `name` field instead of first/last name: fill it from Google.
        user = super().populate_user(request, sociallogin, data)
        with contextlib.suppress(UnsafeAddress):  # Google vouches for the address; kept as given if odd
            user.email = email_canonical(user.email or "")
        name = data.get("name") or " ".join(part for part in (data.get("first_name"), data.get("last_name")) if part)
        user.name = (name or "").strip()[:150]
        return user


class MFAAdapter(DefaultMFAAdapter):
    # TOTP secrets and recovery-code seeds are encrypted at rest (accounts/mfa.py).
    def encrypt(self, text: str) -> str:
        return secret_encrypt(text)

    def decrypt(self, encrypted_text: str) -> str:
        return secret_decrypt(encrypted_text)
