from __future__ import annotations

from django import forms


class AdjustCreditsForm(forms.Form):
    amount = forms.IntegerField(
        help_text="Credits to add; a negative number takes credits back (never below zero).",
    )
    memo = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text="Why: the user's ticket, the job, the mistake being corrected. Kept in the ledger.",
    )

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
