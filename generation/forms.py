from __future__ import annotations

from django import forms

from generation.models import AIModel, AspectRatio, Kind
from generation.providers import provider_available
from generation.services import MAX_PROMPT_LENGTH


def available_models(kind: str):
    return [
        model
        for model in AIModel.objects.filter(kind=kind, enabled=True).order_by("position", "name")
        if provider_available(model.provider)
    ]


class ModelChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, model: AIModel) -> str:
        return f"{model.name} · {model.credit_cost:,} credits"


class JobCreateForm(forms.Form):
    kind = Kind.IMAGE

    model = ModelChoiceField(
        queryset=AIModel.objects.none(),
        widget=forms.RadioSelect,
        empty_label=None,
        error_messages={"invalid_choice": "That model is not available. Choose one from the list."},
    )
    aspect_ratio = forms.ChoiceField(choices=AspectRatio.choices, initial=AspectRatio.SQUARE, widget=forms.RadioSelect)
    prompt = forms.CharField(
        max_length=MAX_PROMPT_LENGTH,
        widget=forms.Textarea(
            attrs={"rows": 4, "placeholder": "A lighthouse on a cliff at dawn, soft mist, film photo"}
        ),
        error_messages={"required": "Describe what you want to see."},
    )
    seed = forms.IntegerField(
        required=False, min_value=0, max_value=2**32 - 1, help_text="Optional: the same seed repeats a result."
    )
    form_token = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        models = available_models(self.kind)
        self.fields["model"].queryset = AIModel.objects.filter(pk__in=[m.pk for m in models]).order_by(
            "position", "name"
        )
        if models and not self.is_bound:
            self.fields["model"].initial = models[0].pk

    def clean_prompt(self) -> str:
        prompt = self.cleaned_data["prompt"].strip()
        if not prompt:
            raise forms.ValidationError("Describe what you want to see.")
        return prompt

    def clean(self):
        cleaned = super().clean()
        model, ratio = cleaned.get("model"), cleaned.get("aspect_ratio")
        if model and model.kind != self.kind:
            self.add_error("model", f"{model.name} makes {model.get_kind_display().lower()}s, not this kind.")
        if model and ratio and ratio not in model.aspect_ratios:
            offered = ", ".join(AspectRatio(r).label.lower() for r in model.offered_ratios())
            self.add_error("aspect_ratio", f"{model.name} offers {offered}.")
        return cleaned
