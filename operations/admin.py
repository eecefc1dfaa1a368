"""The back office's view of a user: balance, jobs and ledger together, with staff actions.

It lives here, above the apps, because it needs billing and generation: accounts knows neither.
It takes the place of accounts' plain UserAdmin (registered before it: accounts comes first in
INSTALLED_APPS, and the admin reads each app's admin module in that order).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import IntegerField, OuterRef, Subquery
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html

from accounts.admin import UserAdmin
from accounts.admin_trail import StaffReasonAdminMixin, ask_reason, staff_trail
from accounts.models import StaffAction, User
from accounts.services import user_suspend
from billing.models import CreditAccount, LedgerEntry, Subscription
from core.admin_lists import EstimatedCountPaginator
from generation.models import Job

RECENT = 20


class RecentJobsInline(admin.TabularInline):
    model = Job
    fk_name = "user"
    verbose_name_plural = f"Recent jobs (newest {RECENT})"
    fields = ("created_at", "kind", "model", "status", "cost", "error_message")
    readonly_fields = fields
    ordering = ["-created_at"]
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("model")
        user_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
        if user_id:
            recent = Job.objects.filter(user_id=user_id).order_by("-created_at").values_list("pk", flat=True)[:RECENT]
            queryset = queryset.filter(pk__in=list(recent))
        return queryset


class BackOfficeUserAdmin(StaffReasonAdminMixin, UserAdmin):
    # Changing a person's details, staff status or groups asks why and is recorded.
    staff_action_kind = StaffAction.Kind.USER
    list_display = ["email", "name", "balance", "plan", "jobs", "is_active", "suspended", "is_staff", "date_joined"]
    list_filter = ["is_active", "is_staff", ("suspended_at", admin.EmptyFieldListFilter)]
    search_fields = ["email", "name"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    inlines = [RecentJobsInline]
    actions = ["adjust_credits", "suspend", "unsuspend", "send_password_reset", "open_jobs"]
    readonly_fields = [*UserAdmin.readonly_fields, "suspended_at", "balance", "ledger", "staff_actions"]
    # Plain lists instead of Django's two-box filter widget, whose script marks up its search
    # icons with ARIA attributes their elements may not carry (a serious axe finding).
    filter_horizontal = ()
    fieldsets = [
        *UserAdmin.fieldsets,
        ("Back office", {"fields": ["balance", "suspended_at", "notify_long_jobs", "ledger"]}),
        ("Staff actions", {"fields": ["staff_actions"]}),
    ]

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "groups":
            kwargs["widget"] = forms.CheckboxSelectMultiple
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_queryset(self, request):
        balance = CreditAccount.objects.filter(user=OuterRef("pk")).values("balance")[:1]
        plan = (
            Subscription.objects.filter(user=OuterRef("pk"), status__in=Subscription.CURRENT)
            .order_by("-created_at")
            .values("plan__name")[:1]
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                balance_value=Subquery(balance, output_field=IntegerField()),
                plan_name=Subquery(plan),
            )
        )

    @admin.display(description="Balance", ordering="balance_value")
    def balance(self, user: User) -> str:
        value = getattr(user, "balance_value", None)
        return f"{value or 0:,}"

    @admin.display(description="Plan", ordering="plan_name")
    def plan(self, user: User) -> str:
        return getattr(user, "plan_name", None) or "—"

    @admin.display(description="Jobs")
    def jobs(self, user: User) -> str:
        # A link, not a count: counting every listed user's jobs read the whole jobs table.
        url = reverse("admin:generation_job_changelist") + f"?user__id__exact={user.pk}"
        return format_html('<a href="{}">Jobs</a>', url)

    @admin.display(description="Suspended", boolean=True, ordering="suspended_at")
    def suspended(self, user: User) -> bool:
        return user.suspended_at is not None

    @admin.display(description="Recent ledger entries")
    def ledger(self, user: User) -> str:
        # By the account id, not through `account__user`: behind the join the planner cannot
        # tell which account it is and walks the whole ledger's index.
        account_id = CreditAccount.objects.filter(user=user).values_list("pk", flat=True).first()
        entries = (
            LedgerEntry.objects.filter(account_id=account_id).select_related("actor").order_by("-created_at", "-id")
        )
        full = reverse("admin:billing_ledgerentry_changelist") + f"?account__id__exact={account_id}"
        return render_to_string(
            "admin/operations/user_ledger.html", {"entries": entries[:RECENT], "full_url": full, "user": user}
        )

    @admin.display(description="Who did what (on this person and their jobs)")
    def staff_actions(self, user: User) -> str:
        return staff_trail(user_id=user.pk)

    def has_adjust_permission(self, request) -> bool:
        return request.user.has_perm("billing.change_creditaccount")

    @admin.action(description="Grant or correct credits…", permissions=["adjust"])
    def adjust_credits(self, request, queryset):
        ids = ",".join(str(pk) for pk in queryset.values_list("pk", flat=True))
        return redirect(reverse("admin:billing_adjust_credits") + f"?users={ids}")

    @admin.action(description="Suspend (no new jobs)", permissions=["change"])
    def suspend(self, request, queryset):
        queryset = self.people_to_act_on(request, queryset)
        reason = ask_reason(self, request, queryset, title="Suspend these people (no new jobs)")
        if not isinstance(reason, str):
            return reason
        done = sum(user_suspend(user=user, staff=request.user, reason=reason) for user in queryset)
        self.message_user(request, f"Suspended {done} user(s): they can sign in but start no jobs.")

    @admin.action(description="Lift suspension", permissions=["change"])
    def unsuspend(self, request, queryset):
        queryset = self.people_to_act_on(request, queryset)
        reason = ask_reason(self, request, queryset, title="Lift the suspension of these people")
        if not isinstance(reason, str):
            return reason
        done = sum(user_suspend(user=user, suspended=False, staff=request.user, reason=reason) for user in queryset)
        self.message_user(request, f"Lifted the suspension of {done} user(s).")

    @admin.action(description="Open their jobs", permissions=["view"])
    def open_jobs(self, request, queryset):
        ids = ",".join(str(pk) for pk in queryset.values_list("pk", flat=True))
        return redirect(reverse("admin:generation_job_changelist") + f"?user__id__in={ids}")


admin.site.unregister(User)
admin.site.register(User, BackOfficeUserAdmin)
