from __future__ import annotations

from allauth.socialaccount.models import SocialAccount
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.forms import DeleteAccountForm, ProfileForm
from accounts.requests import AuthenticatedHttpRequest
from accounts.services import user_delete, user_update_profile


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: AuthenticatedHttpRequest) -> HttpResponse:
    initial = {"name": request.user.name, "notify_long_jobs": request.user.notify_long_jobs}
    form = ProfileForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        user_update_profile(
            user=request.user, name=form.cleaned_data["name"], notify_long_jobs=form.cleaned_data["notify_long_jobs"]
        )
        messages.success(request, "Your profile was saved.")
        return redirect("profile")
    google_accounts = SocialAccount.objects.filter(user=request.user, provider="google")
    return render(request, "accounts/profile.html", {"form": form, "google_accounts": google_accounts})


@login_required
@require_http_methods(["GET", "POST"])
def delete_account(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = DeleteAccountForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        user_delete(user=request.user)
        logout(request)
        messages.success(request, "Your account was deleted. Thank you for trying Dream Pixel.")
        return redirect("landing")
    return render(request, "accounts/delete.html", {"form": form})
