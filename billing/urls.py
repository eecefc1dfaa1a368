from django.urls import path

from billing import views

urlpatterns = [
    path("billing/", views.billing_home, name="billing"),
]
