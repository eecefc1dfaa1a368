"""The staff trail in the admin: its own filterable list, the trail on a user's or job's page,
the page that asks for a reason before an action runs, and the reason on change forms."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.utils import flatten_fieldsets
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from accounts.models import StaffAction, User
from accounts.services import staff_action_record
from core.references import reference_admin_url

RECENT = 20


def staff_trail(*, user_id: int | None = None, reference: str | None = None) -> str:
    """The newest staff actions on a person (including their jobs) or on one thing, for a detail page."""
    actions = StaffAction.objects.select_related("staff").order_by("-created_at", "-id")
    full = reverse("admin:accounts_staffaction_changelist")
    if user_id is not None:
        actions, full = actions.filter(user_id=user_id), f"{full}?user__id__exact={user_id}"
    else:
        actions, full = actions.filter(reference=reference), f"{full}?reference={reference}"
    rows = [(action, reference_admin_url(action.reference)) for action in actions[:RECENT]]
    return render_to_string("admin/accounts/staff_trail.html", {"rows": rows, "full_url": full})


@admin.register(StaffAction)
class StaffActionAdmin(admin.ModelAdmin):
    """Who did what, when and why; read-only, newest first, filtered by indexed columns only."""

    list_display = ["created_at", "staff", "kind", "user_link", "reference_link", "reason", "details_text"]
    list_filter = ["kind", ("staff", admin.RelatedOnlyFieldListFilter), ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["staff", "user"]
    # Exact matches only: they use the indexes (a reference like job:<uuid>, an email).
    search_fields = ["=reference", "=user__email", "=staff__email"]
    show_full_result_count = False
    readonly_fields = ["created_at", "staff", "kind", "user", "reference", "reason", "details", "key"]
    fields = tuple(readonly_fields)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="To", ordering="user__email")
    def user_link(self, action: StaffAction) -> str:
        if action.user_id is None:
            return "—"
        return format_html('<a href="{}">{}</a>', reverse("admin:accounts_user_change", args=[action.user_id]),
                           action.user.email if action.user else "")  # fmt: skip

    @admin.display(description="On")
    def reference_link(self, action: StaffAction) -> str:
        url = reference_admin_url(action.reference)
        return format_html('<a href="{}">{}</a>', url, action.reference) if url else action.reference or "—"

    @admin.display(description="Details")
    def details_text(self, action: StaffAction) -> str:
        return json.dumps(action.details, sort_keys=True)[:200] if action.details else ""


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), max_length=2000,
        help_text="Kept in the staff trail with your name; the customer does not see it.",
    )  # fmt: skip


def ask_reason(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet, *, title: str):
    """For an admin action that needs a reason: the reason once given, else the page asking for it.

    The page posts the same action and selection back, like Django's delete confirmation."""
    if "staff_reason_given" in request.POST:
        form = ReasonForm(request.POST)
        if form.is_valid():
            return form.cleaned_data["reason"].strip()
    else:
        form = ReasonForm()
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "form": form,
        "objects": list(queryset[:RECENT]),
        "more": queryset[RECENT : RECENT + 1].exists(),
        "action": request.POST.get("action", ""),
        "select_across": request.POST.get("select_across", "0"),
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "opts": modeladmin.model._meta,
    }
    return TemplateResponse(request, "admin/accounts/staff_reason.html", context)


# The mixin goes before ModelAdmin in a class's bases; type checkers are told so.
if TYPE_CHECKING:
    _ModelAdminBase = admin.ModelAdmin
else:
    _ModelAdminBase = object


class StaffReasonAdminMixin(_ModelAdminBase):
    """A change form that asks why (settings, prices) and records the change in the trail.

    Quick edits from the list are recorded too, without a reason; fields that need one are
    kept out of `list_editable`."""

    staff_action_kind: str = StaffAction.Kind.PRICE

    def get_fieldsets(self, request, obj=None):
        # Declared fieldsets (the user admin's) do not name the reason: without this it was
        # required but never shown, and such a form could not be saved at all.
        fieldsets = super().get_fieldsets(request, obj)
        may_save = self.has_change_permission(request, obj) if obj is not None else self.has_add_permission(request)
        if not may_save or any("staff_reason" in options.get("fields", ()) for _, options in fieldsets):
            return fieldsets
        return [*fieldsets, ("Why", {"fields": ["staff_reason"]})]

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The admin lists the form's fields back to get_form; the reason is no model field.
        if "fields" not in kwargs:
            kwargs["fields"] = flatten_fieldsets(self.get_fieldsets(request, obj))
        if kwargs["fields"] is not None:
            kwargs["fields"] = [name for name in kwargs["fields"] if name != "staff_reason"]
        form = super().get_form(request, obj, change=change, **kwargs)
        reason = forms.CharField(
            label="Reason for this change", widget=forms.Textarea(attrs={"rows": 2, "cols": 60}), max_length=2000,
            help_text="Kept in the staff trail with your name.",
        )  # fmt: skip
        return type(form.__name__, (form,), {"staff_reason": reason})

    def save_model(self, request, obj: Model, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        changed = [name for name in form.changed_data if name != "staff_reason"]
        if change and not changed:
            return
        changes = {name: [_plain(form.initial.get(name)), _plain(form.cleaned_data.get(name))] for name in changed}
        staff_action_record(
            staff=request.user, kind=self.staff_action_kind, reference=f"{obj._meta.model_name}:{obj.pk}",
            user=obj if isinstance(obj, User) else None,
            reason=form.cleaned_data.get("staff_reason", ""),
            details={"object": str(obj), "changes": changes, "created": not change},
        )  # fmt: skip


def _plain(value):
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Model):
        return str(value.pk)
    if isinstance(value, list | tuple | QuerySet):  # many-to-many: groups, permissions
        return sorted(str(item) for item in value)
    return str(value)
