from __future__ import annotations

from allauth.account.forms import LoginForm, ResetPasswordForm, SignupForm
from django import forms


class ProfileForm(forms.Form):
    name = forms.CharField(max_length=150, required=False, label="Your name")
    notify_long_jobs = forms.BooleanField(required=False, label="Email me when a video or a batch edit is done")


class DeleteAccountForm(forms.Form):
    confirm_email = forms.CharField(
        label="Type your email address to confirm",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_confirm_email(self) -> str:
        value = self.cleaned_data["confirm_email"].strip()
        if value.lower() != self.user.email.lower():
            raise forms.ValidationError("That is not your email address; your account was not deleted.")
        return value


class SiteWordsMixin:
    """allauth's forms with the site's labels: no colon after a label, plain words."""

    labels: dict[str, str] = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.label_suffix = ""
        for name, label in self.labels.items():
            if name in self.fields:
                self.fields[name].label = label


class SignInForm(SiteWordsMixin, LoginForm):
    labels = {"login": "Email address", "password": "Password", "remember": "Keep me signed in"}


class SignUpForm(SiteWordsMixin, SignupForm):
    labels = {"email": "Email address", "password1": "Password", "password2": "The same password again"}


class PasswordResetForm(SiteWordsMixin, ResetPasswordForm):
    labels = {"email": "Email address"}
