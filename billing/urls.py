from django.urls import path

from billing import views
from core.ratelimits import limit_posts


def _limited(view, group: str):
    return limit_posts(view, rate_setting="RATELIMIT_CHECKOUT", group=group)


urlpatterns = [
    path("billing/", views.billing_home, name="billing"),
    path("billing/buy/pack/<int:pack_id>/", _limited(views.buy_pack, "checkout"), name="buy_pack"),
    path("billing/buy/plan/<int:plan_id>/", _limited(views.buy_plan, "checkout"), name="buy_plan"),
    path("billing/portal/", _limited(views.billing_portal, "billing-portal"), name="billing_portal"),
    path("billing/checkout/success/", views.checkout_success, name="checkout_success"),
    path("billing/checkout/cancel/", views.checkout_cancel, name="checkout_cancel"),
    # Stripe posts here; the signature is the authentication, so no CSRF and no login.
    path("webhooks/stripe/", views.stripe_webhook, name="stripe_webhook"),
]
