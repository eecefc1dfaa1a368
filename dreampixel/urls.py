from allauth.account import views as account_views
from allauth.socialaccount.providers.google import views as google_views
from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView

from core.ratelimits import limit_posts
from dreampixel import views

# Sign-in and sign-up POSTs are rate limited per IP; these patterns shadow allauth's own.
account_overrides = [
    path(
        "accounts/login/",
        limit_posts(account_views.login, rate_setting="RATELIMIT_LOGIN", group="login"),
        name="account_login",
    ),
]
if settings.EMAIL_LOGIN_ENABLED:
    account_overrides.append(
        path(
            "accounts/signup/",
            limit_posts(account_views.signup, rate_setting="RATELIMIT_SIGNUP", group="signup"),
            name="account_signup",
        )
    )

# allauth answers its own limits (password reset, sign-in) with this page.
handler429 = "dreampixel.views.allauth_ratelimited"

# Google's views answer 500 (no SocialApp) when Google is not configured: 404 instead, decided
# per request so that tests and operators can switch it.
google_overrides = [
    path("accounts/google/login/", views.when_google_is_on(google_views.oauth2_login), name="google_login"),
    path(
        "accounts/google/login/callback/",
        views.when_google_is_on(google_views.oauth2_callback),
        name="google_callback",
    ),
    path(
        "accounts/google/login/token/",
        views.when_google_is_on(google_views.login_by_token),
        name="google_login_by_token",
    ),
]

urlpatterns = [
    path("", views.landing, name="landing"),
    path("terms/", TemplateView.as_view(template_name="legal/terms.html"), name="terms"),
    path("privacy/", TemplateView.as_view(template_name="legal/privacy.html"), name="privacy"),
    # Browsers ask for /favicon.ico on pages that name none (the admin's).
    path("favicon.ico", views.favicon),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("readyz/deep", views.readyz_deep, name="readyz_deep"),
    path("metrics", views.metrics, name="metrics"),
    *account_overrides,
    *google_overrides,
    path("accounts/", include("allauth.urls")),
    path("", include("accounts.urls")),
    path("", include("billing.urls")),
    path("", include("generation.urls")),
    path("admin/", admin.site.urls),
]

if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
