from __future__ import annotations

from django.contrib import admin, messages
from django.db import models
from django.urls import reverse
from django.utils.html import format_html

from billing.services import LedgerError
from generation import admin_users
from generation.models import AIModel, Batch, Job, JobOutput, JobReport, ProviderWebhook, SiteSettings
from generation.services import (
    GenerationError,
    job_cancel,
    job_refund_by_staff,
    job_rerun_by_staff,
    report_decide,
)


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
    list_filter = ["status", "kind", "provider", "model", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["user", "model"]
    search_fields = ["id", "user__email", "prediction_id", "prompt"]
    date_hierarchy = "created_at"
    inlines = [JobOutputInline]
    readonly_fields = [field.name for field in Job._meta.fields]
    fieldsets = [
        (
            None,
            {"fields": ["id", "user", "model", "kind", "status", "cost", "prompt", "aspect_ratio", "seed", "style"]},
        ),
        ("Outcome", {"fields": ["error_message", "provider_error", "metrics", "share_token", "deleted_at"]}),
        (
            "Provider",
            {"fields": ["provider", "provider_ref", "prediction_id", "attempts", "lease_until", "deadline_at"]},
        ),
        ("Times", {"fields": ["created_at", "started_at", "finished_at"]}),
        ("Links", {"fields": ["source", "batch", "duration_seconds", "form_token"]}),
    ]
    show_full_result_count = False
    actions = ["refund_jobs", "cancel_jobs", "rerun_jobs"]

    # Staff roles (docs/runbook.md): refunds are Finance's, re-runs and cancels Support's.
    def has_refund_permission(self, request) -> bool:
        return request.user.has_perm("generation.refund_job")

    def has_rerun_permission(self, request) -> bool:
        return request.user.has_perm("generation.rerun_job")

    @admin.action(description="Refund (once; records you)", permissions=["refund"])
    def refund_jobs(self, request, queryset):
        done = sum(job_refund_by_staff(job=job, staff=request.user) for job in queryset.select_related("model"))
        self.message_user(request, f"Refunded {done} job(s); {queryset.count() - done} had been refunded already.")

    @admin.action(description="Cancel (refunds once)", permissions=["change"])
    def cancel_jobs(self, request, queryset):
        canceled = 0
        for job in queryset:
            try:
                job_cancel(job=job)
                canceled += 1
            except GenerationError:
                pass
        self.message_user(request, f"Canceled {canceled} job(s); the others had finished.")

    @admin.action(description="Run again for the user (not charged twice)", permissions=["rerun"])
    def rerun_jobs(self, request, queryset):
        for job in queryset.select_related("model", "user", "source"):
            try:
                new_job = job_rerun_by_staff(job=job, staff=request.user)
            except (GenerationError, LedgerError) as error:
                self.message_user(request, f"{job.pk}: {error}", level=messages.ERROR)
            else:
                self.message_user(request, f"{job.pk}: running again as {new_job.pk}.")

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


@admin.register(JobReport)
class JobReportAdmin(admin.ModelAdmin):
    """The queue of reported results: refund (once) or dismiss; the person sees the outcome."""

    list_display = ["created_at", "user_email", "job_link", "reason", "status", "staff", "decided_at"]
    list_filter = ["status"]
    list_select_related = ["job__user", "staff"]
    search_fields = ["job__id", "job__user__email", "reason"]
    readonly_fields = ["job", "reason", "status", "staff", "created_at", "decided_at"]
    fields = ["job", "reason", "status", "staff_note", "staff", "created_at", "decided_at"]
    actions = ["refund_reports", "dismiss_reports"]

    def get_queryset(self, request):
        # Open reports first: this list is the queue.
        return (
            super()
            .get_queryset(request)
            .order_by(models.Case(models.When(status=JobReport.Status.OPEN, then=0), default=1), "created_at")
        )

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="User", ordering="job__user__email")
    def user_email(self, report: JobReport) -> str:
        return report.job.user.email

    @admin.display(description="Job")
    def job_link(self, report: JobReport) -> str:
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:generation_job_change", args=[report.job_id]), report.job_id
        )

    def has_refund_permission(self, request) -> bool:
        return request.user.has_perms(["generation.refund_job", "generation.change_jobreport"])

    @admin.action(description="Refund the job (once)", permissions=["refund"])
    def refund_reports(self, request, queryset):
        done = sum(report_decide(report=r, staff=request.user, refund=True, note=r.staff_note) for r in queryset)
        self.message_user(request, f"Refunded {done} report(s); the others were decided already.")

    @admin.action(description="Dismiss", permissions=["change"])
    def dismiss_reports(self, request, queryset):
        done = sum(report_decide(report=r, staff=request.user, refund=False, note=r.staff_note) for r in queryset)
        self.message_user(request, f"Dismissed {done} report(s).")


admin_users.install()
