from __future__ import annotations

import uuid

from django import forms

from billing.services import ADJUSTMENT_MAX_CREDITS


class AdjustCreditsForm(forms.Form):
    # Drawn when the form is shown and sent back with it: the entries' keys are made from it, so a
    # double submit (or a reload of the POST) writes each entry once, like every other money path.
    token = forms.UUIDField(
        widget=forms.HiddenInput,
        initial=uuid.uuid4,
        error_messages={
            "required": "This form is out of date: open it again.",
            "invalid": "This form is out of date: open it again.",
        },
    )
    amount = forms.IntegerField(
        min_value=-ADJUSTMENT_MAX_CREDITS,
        max_value=ADJUSTMENT_MAX_CREDITS,
        help_text=(
            f"Credits to add; a negative number takes credits back (never below zero). At most "
            f"{ADJUSTMENT_MAX_CREDITS:,} either way."
        ),
    )
    memo = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text="Why: the user's ticket, the job, the mistake being corrected. Kept in the ledger.",
    )

    def entry_key(self, user_id: int) -> str:
        # One entry per user the form was opened for, all from the same submit.
        return f"adjust:{self.cleaned_data['token']}:{user_id}"

    def clean_amount(self) -> int:
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("Enter a number of credits other than zero.")
        return amount

    def clean_memo(self) -> str:
        memo = self.cleaned_data["memo"].strip()
        if not memo:
            raise forms.ValidationError("Say why: the memo is kept with the entry.")
        return memo
