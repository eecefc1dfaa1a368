from __future__ import annotations

from django.contrib import admin

from generation.models import AIModel, Batch, Job, JobOutput, ProviderWebhook, SiteSettings


@admin.register(AIModel)
class AIModelAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "key",
        "kind",
        "provider",
        "provider_ref",
        "credit_cost",
        "timeout_seconds",
        "enabled",
        "position",
    ]
    list_editable = ["credit_cost", "enabled", "position"]
    list_filter = ["kind", "provider", "enabled"]
    search_fields = ["name", "key", "provider_ref"]


class JobOutputInline(admin.TabularInline):
    model = JobOutput
    extra = 0
    can_delete = False
    fields = ["index", "file", "thumbnail", "content_type", "size", "width", "height"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "user_email", "kind", "model", "status", "cost", "created_at", "duration", "error_message"]
    list_filter = ["status", "kind", "provider", "model", "created_at"]
    list_select_related = ["user", "model"]
    search_fields = ["id", "user__email", "prediction_id", "prompt"]
    date_hierarchy = "created_at"
    inlines = [JobOutputInline]
    readonly_fields = [field.name for field in Job._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="User", ordering="user__email")
    def user_email(self, job: Job) -> str:
        return job.user.email

    @admin.display(description="Time")
    def duration(self, job: Job) -> str:
        seconds = job.run_seconds
        return f"{seconds:.1f} s" if seconds is not None else "—"


@admin.register(ProviderWebhook)
class ProviderWebhookAdmin(admin.ModelAdmin):
    list_display = ["webhook_id", "prediction_id", "status", "received_at"]
    search_fields = ["webhook_id", "prediction_id"]
    readonly_fields = ["webhook_id", "prediction_id", "status", "received_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SiteSettings)
class SiteSettingsAdmin(admin.ModelAdmin):
    # The emergency switch: one row; flipping it takes effect on the next request.
    list_display = ["__str__", "generation_enabled", "pause_message", "updated_at"]
    list_editable = ["generation_enabled"]
    list_display_links = ["__str__"]

    def has_add_permission(self, request) -> bool:
        return not SiteSettings.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "model", "created_at"]
    list_select_related = ["user", "model"]
    search_fields = ["id", "user__email"]
    readonly_fields = ["id", "user", "model", "prompt", "form_token", "created_at", "deleted_at"]

    def has_add_permission(self, request) -> bool:
        return False
