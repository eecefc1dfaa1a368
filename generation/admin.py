from __future__ import annotations

import uuid

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404, HttpRequest, HttpResponseBase
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime

from accounts.admin_trail import StaffReasonAdminMixin, ask_reason, staff_trail
from accounts.models import StaffAction
from billing.services import LedgerError
from core.admin_lists import EstimatedCountPaginator, exact_search
from core.storages import file_extension
from generation import admin_showcase  # noqa: F401 (registers its admin on import)
from generation.files import stored_file_response
from generation.models import AIModel, Batch, Job, JobOutput, JobReport, ProviderWebhook, SiteSettings, Upload
from generation.services import (
    GenerationError,
    job_cancel_by_staff,
    job_refund_by_staff,
    job_rerun_by_staff,
    report_decide,
)


@admin.register(AIModel)
class AIModelAdmin(StaffReasonAdminMixin, admin.ModelAdmin):
    # A price change asks for a reason on the change form, so credit_cost is not list-editable.
    list_display = [
        "name",
        "key",
        "kind",
        "provider",
        "provider_ref",
        "credit_cost",
        "max_outputs",
        "timeout_seconds",
        "enabled",
        "position",
    ]
    list_editable = ["enabled", "position"]
    list_filter = ["kind", "provider", "enabled"]
    search_fields = ["name", "key", "provider_ref"]


def _file_url(variant: str, object_id: uuid.UUID) -> str:
    return reverse("admin:generation_job_file", args=[variant, object_id])


def job_preview(job: Job) -> str:
    """The pictures of a job for staff: the photo it edited and what it made, each opening the
    full file (served through the admin, which checks the staff member may view jobs)."""
    figures: list[tuple[str, str, str | None, bool]] = []
    if job.source is not None and job.source.file:
        figures.append(("Before: the photo that was edited", _file_url("upload", job.source.pk), None, False))
    for output in job.outputs.all():
        picture = _file_url("thumbnail" if output.thumbnail else "output", output.id)
        figures.append((f"Result {output.index + 1}", _file_url("output", output.id), picture, output.is_video))
    if not figures:
        return "No pictures (the job has none, or they were deleted)."
    return format_html(
        '<div class="dp-preview">{}</div>',
        format_html_join(
            "",
            '<figure><a href="{}" target="_blank" rel="noopener"><img src="{}" alt="{}" loading="lazy"></a>'
            "<figcaption>{}</figcaption></figure>",
            (
                (
                    full,
                    picture or full,
                    f"{label}: {job.prompt[:80]}" if job.prompt else label,
                    label + (" (video)" if video else ""),
                )
                for label, full, picture, video in figures
            ),
        ),
    )


class JobOutputInline(admin.TabularInline):
    model = JobOutput
    extra = 0
    can_delete = False
    # Short columns: the file names are long and say nothing a person reviewing needs.
    fields = ("index", "content_type", "size", "dimensions", "open_file")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Size in pixels")
    def dimensions(self, output: JobOutput) -> str:
        return f"{output.width}×{output.height}" if output.width else "—"

    @admin.display(description="File")
    def open_file(self, output: JobOutput) -> str:
        return format_html('<a href="{}" target="_blank" rel="noopener">Open</a>', _file_url("output", output.id))


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["short_id", "user_email", "kind", "model", "status", "cost", "created", "duration", "error"]
    list_display_links = ["short_id"]
    # A job's page is its owner's: staff review it here, with its pictures.
    view_on_site = False
    list_filter = ["status", "kind", "provider", "model", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["user", "model"]
    # Exact and indexed (see get_search_results); no date_hierarchy and no full count: each
    # read the whole table on every request. Prompts are not searched: a person's jobs are
    # one click away from their email.
    search_fields = ["id", "user__email", "prediction_id"]
    search_help_text = "Exact: a job id, an email or a provider prediction id."
    paginator = EstimatedCountPaginator
    inlines = [JobOutputInline]
    readonly_fields = [*(field.name for field in Job._meta.fields), "staff_actions", "pictures"]
    fieldsets = [
        (None, {"fields": ["pictures"]}),
        (
            None,
            {
                "fields": [
                    *["id", "user", "model", "kind", "status", "cost", "num_outputs", "failed_outputs"],
                    *["prompt", "negative_prompt", "aspect_ratio", "seed", "style", "favourite"],
                ]
            },
        ),
        ("Outcome", {"fields": ["error_message", "provider_error", "metrics", "share_token", "deleted_at"]}),
        (
            "Provider",
            {"fields": ["provider", "provider_ref", "prediction_id", "attempts", "lease_until", "deadline_at"]},
        ),
        ("Times", {"fields": ["created_at", "started_at", "finished_at"]}),
        ("Links", {"fields": ["source", "source_output", "batch", "duration_seconds", "upscale_factor", "form_token"]}),
        ("Staff actions", {"fields": ["staff_actions"]}),
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
        reason = ask_reason(self, request, queryset, title="Refund these jobs (a running one is stopped first)")
        if not isinstance(reason, str):
            return reason
        done = 0
        for job in queryset.select_related("model"):
            try:
                done += job_refund_by_staff(job=job, staff=request.user, reason=reason)
            except LedgerError as error:
                self.message_user(request, f"{job.pk}: {error}", level=messages.ERROR)
        self.message_user(
            request,
            f"Refunded {done} job(s); the others had been refunded already or cost nothing (a re-run on the house).",
        )

    @admin.action(description="Cancel (refunds once)", permissions=["change"])
    def cancel_jobs(self, request, queryset):
        reason = ask_reason(self, request, queryset, title="Cancel and refund these jobs")
        if not isinstance(reason, str):
            return reason
        canceled = sum(job_cancel_by_staff(job=job, staff=request.user, reason=reason) for job in queryset)
        self.message_user(request, f"Canceled {canceled} job(s); the others had finished.")

    @admin.action(description="Run again for the user (on the house)", permissions=["rerun"])
    def rerun_jobs(self, request, queryset):
        reason = ask_reason(self, request, queryset, title="Run these jobs again for their owners")
        if not isinstance(reason, str):
            return reason
        for job in queryset.select_related("model", "user", "source"):
            try:
                new_job = job_rerun_by_staff(job=job, staff=request.user, reason=reason)
            except (GenerationError, LedgerError) as error:
                self.message_user(request, f"{job.pk}: {error}", level=messages.ERROR)
            else:
                self.message_user(request, f"{job.pk}: running again as {new_job.pk}.")

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_search_results(self, request, queryset, search_term):
        found = exact_search(
            queryset, search_term, uuid_fields=("id",), email_fields=("user__email",), text_fields=("prediction_id",)
        )
        return found, False

    @admin.display(description="User", ordering="user__email")
    def user_email(self, job: Job) -> str:
        # May wrap before the domain, never inside a word: the list keeps every column in view.
        local, _, domain = job.user.email.partition("@")
        return format_html("{}<wbr>@{}", local, domain)

    @admin.display(description="Job", ordering="id")
    def short_id(self, job: Job) -> str:
        return str(job.id)[:8]

    @admin.display(description="Created", ordering="created_at")
    def created(self, job: Job) -> str:
        return date_format(localtime(job.created_at), "j M Y, H:i")

    @admin.display(description="Error")
    def error(self, job: Job) -> str:
        return job.error_message[:80] + ("…" if len(job.error_message) > 80 else "")

    @admin.display(description="Pictures")
    def pictures(self, job: Job) -> str:
        return job_preview(job)

    def get_urls(self):
        view = self.admin_site.admin_view(self.file_view)
        return [
            # A plain string, like the admin's own object URLs; read as a uuid below.
            path("file/<str:variant>/<str:object_id>/", view, name="generation_job_file"),
            *super().get_urls(),
        ]

    def file_view(self, request: HttpRequest, variant: str, object_id: str) -> HttpResponseBase:
        """A job's picture for staff who may view jobs: a custom admin view checks it itself."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            file_id = uuid.UUID(object_id)
        except ValueError:
            raise Http404 from None
        if variant == "upload":
            name = get_object_or_404(Upload, pk=file_id).file.name
        elif variant in ("output", "thumbnail"):
            output = get_object_or_404(JobOutput, pk=file_id)
            name = output.thumbnail.name if variant == "thumbnail" else output.file.name
        else:
            raise PermissionDenied
        return stored_file_response(
            name, filename=f"{variant}-{file_id.hex[:8]}.{file_extension(name)}", download=False
        )

    @admin.display(description="Who did what")
    def staff_actions(self, job: Job) -> str:
        return staff_trail(reference=f"job:{job.pk}")

    @admin.display(description="Time")
    def duration(self, job: Job) -> str:
        seconds = job.run_seconds
        return f"{seconds:.1f} s" if seconds is not None else "—"


@admin.register(ProviderWebhook)
class ProviderWebhookAdmin(admin.ModelAdmin):
    list_display = ["webhook_id", "prediction_id", "status", "received_at"]
    search_fields = ["webhook_id", "prediction_id"]
    search_help_text = "Exact: a webhook delivery id or a prediction id."
    show_full_result_count = False
    paginator = EstimatedCountPaginator

    def get_search_results(self, request, queryset, search_term):
        return exact_search(queryset, search_term, text_fields=("webhook_id", "prediction_id")), False

    readonly_fields = ["webhook_id", "prediction_id", "status", "received_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SiteSettings)
class SiteSettingsAdmin(StaffReasonAdminMixin, admin.ModelAdmin):
    # The emergency switch: one row; flipping it takes effect on the next request. It is flipped
    # on the change form, which asks why and records it in the staff trail.
    list_display = ["__str__", "generation_enabled", "pause_message", "updated_at"]
    list_display_links = ["__str__"]
    staff_action_kind = StaffAction.Kind.SETTINGS

    def has_add_permission(self, request) -> bool:
        return not SiteSettings.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    view_on_site = False  # a batch's page is its owner's
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
    list_select_related = ["job__user", "staff"]
    readonly_fields = ["job", "pictures", "prompt", "reason", "status", "staff", "created_at", "decided_at"]
    fields = ["job", "pictures", "prompt", "reason", "status", "staff_note", "staff", "created_at", "decided_at"]
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

    @admin.display(description="What the person saw")
    def pictures(self, report: JobReport) -> str:
        return job_preview(report.job)

    @admin.display(description="Prompt")
    def prompt(self, report: JobReport) -> str:
        return report.job.prompt

    @admin.display(description="Job")
    def job_link(self, report: JobReport) -> str:
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:generation_job_change", args=[report.job_id]), report.job_id
        )

    def has_refund_permission(self, request) -> bool:
        return request.user.has_perms(["generation.refund_job", "generation.change_jobreport"])

    @admin.action(description="Refund the job (once)", permissions=["refund"])
    def refund_reports(self, request, queryset):
        reason = ask_reason(self, request, queryset, title="Refund the reported jobs")
        if not isinstance(reason, str):
            return reason
        done = 0
        for report in queryset:
            try:
                done += report_decide(report=report, staff=request.user, refund=True, note=reason)
            except (GenerationError, LedgerError) as error:
                self.message_user(request, str(error), level=messages.ERROR)
        self.message_user(request, f"Refunded {done} report(s); the others were decided already or cost nothing.")

    @admin.action(description="Dismiss", permissions=["change"])
    def dismiss_reports(self, request, queryset):
        reason = ask_reason(self, request, queryset, title="Dismiss the reports")
        if not isinstance(reason, str):
            return reason
        done = sum(report_decide(report=r, staff=request.user, refund=False, note=reason) for r in queryset)
        self.message_user(request, f"Dismissed {done} report(s).")
