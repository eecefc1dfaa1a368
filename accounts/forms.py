from __future__ import annotations

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
