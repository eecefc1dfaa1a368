"""The landing page's showcase: staff pick finished results their owners share."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from generation.models import ShowcaseItem


@admin.register(ShowcaseItem)
class ShowcaseItemAdmin(admin.ModelAdmin):
    list_display = ["preview", "__str__", "kind", "position", "active", "still_shared", "added_by", "created_at"]
    list_editable = ["position", "active"]
    list_select_related = ["job", "added_by"]
    raw_id_fields = ["job"]
    fields = ["job", "caption", "position", "active"]

    @admin.display(description="")
    def preview(self, item: ShowcaseItem) -> str:
        if not item.job.share_token:
            return "—"
        return format_html('<img src="/s/{}/poster/" alt="" width="64" height="64">', item.job.share_token)

    @admin.display(description="Kind")
    def kind(self, item: ShowcaseItem) -> str:
        return item.job.get_kind_display()

    @admin.display(description="Shown", boolean=True)
    def still_shared(self, item: ShowcaseItem) -> bool:
        # The owner may stop sharing or delete it at any time: then the landing skips it.
        return bool(item.job.share_token) and item.job.deleted_at is None

    def save_model(self, request, obj: ShowcaseItem, form, change: bool) -> None:
        if not change:
            obj.added_by = request.user
        super().save_model(request, obj, form, change)
