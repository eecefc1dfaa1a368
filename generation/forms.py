from __future__ import annotations

from django import forms

from accounts.models import User
from billing.services import InsufficientCredits, balance_of
from generation.models import MAX_OUTPUTS, AIModel, AspectRatio, Batch, Kind
from generation.presets import style_choices
from generation.providers import provider_available
from generation.services import MAX_PROMPT_LENGTH
from generation.uploads import (
    MAX_UPLOAD_BYTES,
    UploadRejected,
    ValidatedImage,
    image_validate,
    images_within_budget,
)

PHOTO_TYPES = "image/jpeg,image/png,image/webp"


def available_models(*kinds: str) -> list[AIModel]:
    return [
        model
        for model in AIModel.objects.filter(kind__in=kinds, enabled=True).order_by("position", "name")
        if provider_available(model.provider)
    ]


class ModelChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, model: AIModel) -> str:
        return f"{model.name} · {model.credit_cost:,} credits"


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": PHOTO_TYPES}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else ([data] if data else [])
        return [super(MultipleFileField, self).clean(file, initial) for file in files]


class JobForm(forms.Form):
    """What every create form has: a model of its kind, a prompt, and a one-time token."""

    kind = Kind.IMAGE
    title = "Create an image"

    model = ModelChoiceField(
        queryset=AIModel.objects.none(),
        widget=forms.RadioSelect,
        empty_label=None,
        error_messages={"invalid_choice": "That model is not available. Choose one from the list."},
    )
    prompt = forms.CharField(
        max_length=MAX_PROMPT_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={"required": "Describe what you want to see."},
    )
    style = forms.ChoiceField(choices=(), required=False, initial="", widget=forms.RadioSelect)
    negative_prompt = forms.CharField(
        required=False,
        max_length=MAX_PROMPT_LENGTH,
        label="Leave out",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Things the picture should not show, e.g. text, blur, extra fingers.",
    )
    form_token = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args, user: User | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.short_of_credits = False
        self.models = available_models(self.kind)
        # Any enabled model may be posted, so that one of the wrong kind gets its own message.
        model_field = self.fields["model"]
        assert isinstance(model_field, forms.ModelChoiceField)  # declared above
        model_field.queryset = AIModel.objects.filter(enabled=True)
        if self.models and not self.is_bound:
            model_field.initial = self.models[0].pk
        style_field = self.fields["style"]
        assert isinstance(style_field, forms.ChoiceField)  # declared above
        style_field.choices = style_choices(self.kind)
        # Offered only where a model of this page reads it; the page shows it for those models.
        self.negative_prompt_models = " ".join(str(m.pk) for m in self.models if m.takes_negative_prompt)
        if not self.negative_prompt_models:
            del self.fields["negative_prompt"]
        # The page shows the shapes its models offer; a posted shape the chosen model does not
        # offer is refused by clean() with a sentence naming the ones it does.
        offered = {ratio for model in self.models for ratio in model.aspect_ratios}
        self.aspect_ratio_choices = [(value, label) for value, label in AspectRatio.choices if value in offered]

    @property
    def ratio_options(self) -> list[dict]:
        """Each shape this page offers, the models that offer it and the model's own value
        for it (a video's portrait is 9:16, an image's 2:3): the page shows a chosen model's."""
        options = []
        for value, label in self.aspect_ratio_choices:
            values = {model.pk: model.aspect_ratios[value] for model in self.models if value in model.aspect_ratios}
            options.append(
                {
                    "value": value,
                    "label": label,
                    "models": " ".join(str(pk) for pk in values),
                    "ratio": next(iter(values.values()), ""),
                    "values": " ".join(f"{pk}={ratio}" for pk, ratio in values.items()),
                }
            )
        return options

    def clean_prompt(self) -> str:
        prompt = self.cleaned_data["prompt"].strip()
        if not prompt:
            raise forms.ValidationError("Describe what you want to see.")
        return prompt

    def clean_model(self) -> AIModel:
        model = self.cleaned_data["model"]
        if model.kind != self.kind:
            raise forms.ValidationError(
                f"{model.name} makes {model.get_kind_display().lower()}s; choose a model from this page."
            )
        if model.pk not in {m.pk for m in self.models}:
            raise forms.ValidationError("That model is not available. Choose one from the list.")
        return model

    def clean(self):
        cleaned = super().clean()
        model, ratio = cleaned.get("model"), cleaned.get("aspect_ratio")
        if model and ratio and ratio not in model.aspect_ratios:
            offered = ", ".join(AspectRatio(r).label.lower() for r in model.offered_ratios())
            self.add_error("aspect_ratio", f"{model.name} offers {offered}.")
        negative = (cleaned.get("negative_prompt") or "").strip()
        if model and negative and not model.takes_negative_prompt:
            self.add_error("negative_prompt", f"{model.name} takes no negative prompt; leave it empty.")
        return cleaned


class ImageJobForm(JobForm):
    kind = Kind.IMAGE
    title = "Create an image"

    aspect_ratio = forms.ChoiceField(
        choices=[choice for choice in AspectRatio.choices if choice[0] != AspectRatio.ORIGINAL],
        initial=AspectRatio.SQUARE,
        widget=forms.RadioSelect,
    )
    seed = forms.IntegerField(
        required=False, min_value=0, max_value=2**32 - 1, help_text="Optional: the same seed repeats a result."
    )
    # Results per job, each charged at the model's price (and refunded on its own if it fails).
    # Not sent (a page from before this field, a script): one.
    num_outputs = forms.TypedChoiceField(
        choices=[(n, str(n)) for n in range(1, MAX_OUTPUTS + 1)],
        coerce=int,
        initial=1,
        required=False,
        widget=forms.RadioSelect,
    )

    def clean_num_outputs(self) -> int:
        return self.cleaned_data["num_outputs"] or 1

    def clean(self):
        cleaned = super().clean()
        model, count = cleaned.get("model"), cleaned.get("num_outputs")
        if model and count and count > model.max_outputs:
            self.add_error(
                "num_outputs",
                f"{model.name} makes one image at a time."
                if model.max_outputs == 1
                else f"{model.name} makes up to {model.max_outputs} images at a time.",
            )
        return cleaned


class VideoJobForm(ImageJobForm):
    kind = Kind.VIDEO
    title = "Create a video"
    num_outputs = None  # type: ignore[assignment]  # one clip per job: Django's way to drop a field

    style = forms.ChoiceField(choices=(), required=False, initial="cinematic", widget=forms.RadioSelect)


class PhotoJobForm(JobForm):
    """Edits: the photos are looked at only once the model is valid and the person can pay for
    them all (fields are cleaned in order: the model comes before the photos)."""

    def photos_affordable(self, count: int) -> bool:
        model = self.cleaned_data.get("model")
        if model is None:
            return False  # the model's own error says why; the files are not opened
        if self.user is not None:
            needed, balance = model.credit_cost * count, balance_of(self.user)
            if balance < needed:
                # Said above the form, as the services' refusal is, with the link to buy more.
                self.short_of_credits = True
                self.add_error(None, str(InsufficientCredits(needed=needed, balance=balance)))
                return False
        return True


def _validated(file) -> ValidatedImage:
    try:
        return image_validate(file)
    except UploadRejected as rejected:
        raise forms.ValidationError(str(rejected)) from None


class EditJobForm(PhotoJobForm):
    kind = Kind.IMAGE_EDIT
    title = "Edit a photo"

    missing_photo = "Choose a photo to edit."

    photo = forms.FileField(
        required=False,
        widget=forms.ClearableFileInput(
            attrs={"accept": PHOTO_TYPES, "data-max-bytes": MAX_UPLOAD_BYTES, "data-max-count": 1}
        ),
        help_text=f"JPEG, PNG or WebP, up to {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.",
    )
    # Or one of the person's own results (its id; the view looks it up among theirs).
    source_output = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def clean_photo(self) -> ValidatedImage | None:
        photo = self.cleaned_data["photo"]
        if not photo or not self.photos_affordable(1):
            return None
        return _validated(photo)

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("photo") and not cleaned.get("source_output") and "photo" not in self.errors:
            self.add_error("photo", self.missing_photo)
        return cleaned


class AnimateJobForm(EditJobForm):
    kind = Kind.ANIMATE
    title = "Animate a photo"
    missing_photo = "Choose a photo to animate."


class BatchForm(PhotoJobForm):
    kind = Kind.IMAGE_EDIT
    title = "Edit a batch of photos"

    photos = MultipleFileField(
        widget=MultipleFileInput(
            attrs={"accept": PHOTO_TYPES, "data-max-bytes": MAX_UPLOAD_BYTES, "data-max-count": Batch.MAX_ITEMS}
        ),
        help_text=f"Up to {Batch.MAX_ITEMS} photos: JPEG, PNG or WebP, up to {MAX_UPLOAD_BYTES // (1024 * 1024)} MB each.",
        error_messages={"required": "Choose the photos to edit."},
    )

    def clean_photos(self) -> list[ValidatedImage]:
        files = self.cleaned_data["photos"]
        if len(files) > Batch.MAX_ITEMS:
            raise forms.ValidationError(f"A batch takes up to {Batch.MAX_ITEMS} photos; you chose {len(files)}.")
        if not self.photos_affordable(len(files)):
            return []
        images, problems = [], []
        for file in files:
            try:
                images.append(image_validate(file))
            except UploadRejected as rejected:
                problems.append(str(rejected))
        if problems:
            raise forms.ValidationError(problems)
        try:
            images_within_budget(images)
        except UploadRejected as rejected:
            raise forms.ValidationError(str(rejected)) from None
        return images


FORMS_BY_KIND: dict[str, type[JobForm]] = {
    "image": ImageJobForm,
    "edit": EditJobForm,
    "video": VideoJobForm,
    "animate": AnimateJobForm,
}
