from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, TypedDict

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.admin_trail import StaffReasonAdminMixin
from accounts.models import StaffAction, User
from accounts.requests import AuthenticatedHttpRequest
from accounts.services import staff_action_record
from billing.forms import AdjustCreditsForm
from billing.models import (
    CheckoutSession,
    CreditAccount,
    CreditPack,
    LedgerEntry,
    Plan,
    ReconcileFinding,
    ReconcileRun,
    StripeCustomer,
    StripeEvent,
    Subscription,
)
from billing.money import format_money
from billing.reconcile.runner import finding_fix, reconcile_run
from billing.services import LedgerError, credits_adjust
from billing.stripe_services import EVENT_HANDLERS, stripe_event_process
from core.admin_lists import EstimatedCountPaginator, exact_search

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

RECENT_ENTRIES = 20
# Users one grant-or-correct form may name (the list comes in the address, from an admin action).
ADJUST_MAX_USERS = 100
# A user id as the admin writes it: ASCII digits (str.isdigit() also takes "²"), at most what a
# bigint holds.
USER_ID = re.compile(r"[0-9]{1,18}")


def _user_ids(raw: str) -> list[int]:
    return [int(part) for part in (p.strip() for p in raw.split(",", ADJUST_MAX_USERS + 1)) if USER_ID.fullmatch(part)]


class ReadOnlyAdminMixin:
    # The ledger is append-only for everyone, superusers included: corrections are new
    # entries written by a service, with a memo and the staff member's name.
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class RecentEntriesInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = LedgerEntry
    fk_name = "account"
    verbose_name_plural = f"Recent ledger entries (newest {RECENT_ENTRIES})"
    fields = (
        "created_at",
        "kind",
        "amount",
        "balance_after",
        "idempotency_key",
        "actor_type",
        "actor",
        "memo",
    )
    readonly_fields = fields
    ordering = ["-created_at", "-id"]
    extra = 0
    show_change_link = True

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("actor")
        account_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
        if account_id:
            recent = LedgerEntry.objects.filter(account_id=account_id).order_by("-created_at", "-id")
            queryset = queryset.filter(pk__in=list(recent.values_list("pk", flat=True)[:RECENT_ENTRIES]))
        return queryset


@admin.register(CreditAccount)
class CreditAccountAdmin(admin.ModelAdmin):
    list_display = ["user_email", "balance_shown", "updated_at"]
    list_select_related = ["user"]
    search_fields = ["user__email", "user__name"]
    ordering = ["-updated_at"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    readonly_fields = ("user", "balance", "created_at", "updated_at", "ledger_link")
    fields = readonly_fields
    inlines = [RecentEntriesInline]
    actions = ["adjust_credits"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="User", ordering="user__email")
    def user_email(self, account: CreditAccount) -> str:
        return account.user.email

    # Lists show numbers with thousands separators (a model field would be shown bare).
    @admin.display(description="Balance", ordering="balance")
    def balance_shown(self, account: CreditAccount) -> str:
        return f"{account.balance:,}"

    @admin.display(description="All entries")
    def ledger_link(self, account: CreditAccount) -> str:
        url = reverse("admin:billing_ledgerentry_changelist") + f"?account__id__exact={account.pk}"
        return format_html('<a href="{}">Full ledger</a> · <a href="{}">Grant or correct credits</a>', url,
                           reverse("admin:billing_adjust_credits") + f"?users={account.user_id}")  # fmt: skip

    @admin.action(description="Grant or correct credits…", permissions=["change"])
    def adjust_credits(self, request: HttpRequest, queryset: QuerySet[CreditAccount]) -> HttpResponse:
        user_ids = ",".join(str(pk) for pk in queryset.values_list("user_id", flat=True))
        return redirect(reverse("admin:billing_adjust_credits") + f"?users={user_ids}")

    def get_urls(self):
        extra = [
            path("adjust/", self.admin_site.admin_view(self.adjust_view), name="billing_adjust_credits"),
        ]
        return extra + super().get_urls()

    def adjust_view(self, request: AuthenticatedHttpRequest) -> HttpResponse:
        if not request.user.has_perm("billing.change_creditaccount"):
            raise PermissionDenied
        user_ids = _user_ids(request.GET.get("users", ""))
        if len(user_ids) > ADJUST_MAX_USERS:
            messages.error(request, f"Choose at most {ADJUST_MAX_USERS} users at a time.")
            return HttpResponseRedirect(reverse("admin:billing_creditaccount_changelist"))
        users = list(User.objects.filter(pk__in=user_ids).order_by("email"))
        if not users:
            messages.error(request, "Choose at least one user.")
            return HttpResponseRedirect(reverse("admin:billing_creditaccount_changelist"))
        form = AdjustCreditsForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            for user in users:
                try:
                    entry = credits_adjust(
                        user=user, amount=form.cleaned_data["amount"], memo=form.cleaned_data["memo"],
                        staff=request.user, key=form.entry_key(user.pk),
                    )  # fmt: skip
                except LedgerError as error:
                    messages.error(request, f"Not changed for {user.email}: {error}")
                else:
                    messages.success(
                        request,
                        f"Adjusted for {user.email}: {entry.amount:+,} credits, balance {entry.balance_after:,}.",
                    )
            return HttpResponseRedirect(reverse("admin:billing_creditaccount_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Grant or correct credits",
            "form": form,
            "users": users,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/billing/adjust_credits.html", context)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "user_email",
        "kind",
        "amount_shown",
        "balance_after_shown",
        "idempotency_key",
        "actor_label",
        "memo",
    ]
    list_filter = ["kind", "actor_type", "created_at"]
    list_select_related = ["account__user", "actor"]
    # Exact and indexed (see get_search_results); no date_hierarchy and no full count: each
    # read the whole table on every request.
    search_fields = ["idempotency_key", "reference", "account__user__email"]
    search_help_text = "Exact: an idempotency key (charge:<job id>), a reference (job:<job id>) or an email."
    show_full_result_count = False
    paginator = EstimatedCountPaginator

    def get_search_results(self, request, queryset, search_term):
        found = exact_search(
            queryset, search_term, email_fields=("account__user__email",), text_fields=("idempotency_key", "reference")
        )
        return found, False

    @admin.display(description="User", ordering="account__user__email")
    def user_email(self, entry: LedgerEntry) -> str:
        return entry.account.user.email

    @admin.display(description="Amount", ordering="amount")
    def amount_shown(self, entry: LedgerEntry) -> str:
        return f"{entry.amount:,}"

    @admin.display(description="Balance after", ordering="balance_after")
    def balance_after_shown(self, entry: LedgerEntry) -> str:
        return f"{entry.balance_after:,}"

    @admin.display(description="By")
    def actor_label(self, entry: LedgerEntry) -> str:
        return (
            f"{entry.get_actor_type_display()}: {entry.actor.email}" if entry.actor else entry.get_actor_type_display()
        )


# --- Stripe ------------------------------------------------------------------------------------


class _PriceAdmin(StaffReasonAdminMixin, admin.ModelAdmin):
    list_display = ["name", "credits", "price", "stripe_price_id", "active", "order"]
    list_editable = ["active", "order"]
    list_filter = ["active"]
    search_fields = ["name", "stripe_price_id"]
    ordering = ["order", "price_cents"]

    @admin.display(description="Price", ordering="price_cents")
    def price(self, obj: CreditPack | Plan) -> str:
        return format_money(obj.price_cents, obj.currency)


@admin.register(CreditPack)
class CreditPackAdmin(_PriceAdmin):
    pass


class _SubscriberCount(TypedDict):
    subscriber_count: int


@admin.register(Plan)
class PlanAdmin(_PriceAdmin):
    list_display = ["name", "credits", "price", "stripe_price_id", "active", "order", "subscribers"]

    def get_queryset(self, request):
        current = Q(subscriptions__status__in=Subscription.CURRENT)
        return super().get_queryset(request).annotate(subscriber_count=Count("subscriptions", filter=current))

    @admin.display(description="Current subscribers", ordering="subscriber_count")
    def subscribers(self, plan: WithAnnotations[Plan, _SubscriberCount]) -> int:
        return plan.subscriber_count


class HandledEventTypeFilter(admin.SimpleListFilter):
    # The types we handle, from the code: listing the types present would read every event.
    title = "type"
    parameter_name = "type"

    def lookups(self, request, model_admin):
        return [(name, name) for name in sorted(EVENT_HANDLERS)]

    def queryset(self, request, queryset):
        return queryset.filter(type=self.value()) if self.value() else queryset


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["received_at", "type", "event_id", "object_id", "status", "attempts", "short_error"]
    list_filter = ["status", HandledEventTypeFilter, "livemode"]
    search_fields = ["event_id", "object_id", "type"]
    search_help_text = "Exact: an event id (evt_…), an object id (cs_…, in_…, ch_…) or an event type."
    show_full_result_count = False
    paginator = EstimatedCountPaginator

    def get_search_results(self, request, queryset, search_term):
        return exact_search(queryset, search_term, text_fields=("event_id", "object_id", "type")), False

    fields = (
        "event_id",
        "type",
        "object_id",
        "livemode",
        "status",
        "attempts",
        "error",
        "received_at",
        "last_attempt_at",
        "processed_at",
        "pretty_payload",
    )
    readonly_fields = fields
    actions = ["process_again"]

    @admin.display(description="Error")
    def short_error(self, event: StripeEvent) -> str:
        return event.error[:120]

    @admin.display(description="Payload")
    def pretty_payload(self, event: StripeEvent) -> str:
        return format_html("<pre>{}</pre>", json.dumps(event.payload, indent=2, sort_keys=True))

    def has_process_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("billing.change_stripeevent")

    @admin.action(description="Process again", permissions=["process"])
    def process_again(self, request: AuthenticatedHttpRequest, queryset: QuerySet[StripeEvent]) -> None:
        # The same idempotent service as the webhook: processing a done event again changes nothing.
        for event in queryset.order_by("received_at", "id"):
            try:
                stripe_event_process(event=event)
            except Exception as error:
                messages.error(request, f"{event.type} {event.event_id}: {type(error).__name__}: {error}")
            else:
                messages.success(request, f"{event.type} {event.event_id}: processed.")
            self.log_change(request, event, "Processed again")
            staff_action_record(
                staff=request.user, kind=StaffAction.Kind.STRIPE_EVENT, reference=f"stripeevent:{event.pk}",
                details={"event": event.event_id, "type": event.type},
            )  # fmt: skip


@admin.register(StripeCustomer)
class StripeCustomerAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["customer_id", "user", "created_at"]
    list_select_related = ["user"]
    search_fields = ["customer_id", "user__email"]


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["subscription_id", "user", "plan", "status", "current_period_end", "cancel_at_period_end"]
    list_filter = ["status", "plan"]
    list_select_related = ["user", "plan"]
    search_fields = ["subscription_id", "user__email"]


@admin.register(CheckoutSession)
class CheckoutSessionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "session_id", "user", "mode", "credits", "amount", "payment_state"]
    list_filter = ["mode", "payment_state"]
    list_select_related = ["user"]
    search_fields = ["session_id", "invoice_id", "user__email"]
    date_hierarchy = "created_at"

    @admin.display(description="Amount", ordering="amount_cents")
    def amount(self, checkout: CheckoutSession) -> str:
        return format_money(checkout.amount_cents, checkout.currency)


class ReconcileFindingInline(admin.TabularInline):
    model = ReconcileFinding
    extra = 0
    can_delete = False
    fields = ("description", "count", "examples", "fixable", "fixed_count", "fixed_at", "fixed_by")
    readonly_fields = fields
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("fixed_by")  # one query, not one per row

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class _ProblemCount(TypedDict):
    problem_count: int


@admin.register(ReconcileRun)
class ReconcileRunAdmin(admin.ModelAdmin):
    list_display = ["started_at", "trigger", "started_by", "full", "since", "ok", "checks", "problems", "fixed"]
    list_filter = ["ok", "trigger", "full"]
    readonly_fields = ["started_at", "finished_at", "trigger", "started_by", "full", "since", "ok", "checks", "fixed"]
    inlines = [ReconcileFindingInline]
    change_list_template = "admin/billing/reconcilerun/change_list.html"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("started_by").annotate(problem_count=Count("findings"))

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Findings", ordering="problem_count")
    def problems(self, run: WithAnnotations[ReconcileRun, _ProblemCount]) -> int:
        return run.problem_count

    def get_urls(self):
        start = path("start/", self.admin_site.admin_view(self.start_view), name="billing_reconcile_start")
        return [start, *super().get_urls()]

    def start_view(self, request: AuthenticatedHttpRequest) -> HttpResponse:
        # has_add_permission is False for everyone (runs are not typed in); the permission still says who may start one.
        if not request.user.has_perm("billing.add_reconcilerun"):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:billing_reconcilerun_changelist"))
        run, _, _ = reconcile_run(fix=False, trigger=ReconcileRun.Trigger.ADMIN, staff=request.user)
        messages.success(request, "All clear." if run.ok else f"{run.findings.count()} check(s) found problems.")
        return HttpResponseRedirect(reverse("admin:billing_reconcilerun_change", args=[run.pk]))


@admin.register(ReconcileFinding)
class ReconcileFindingAdmin(admin.ModelAdmin):
    list_display = ["run", "description", "count", "fixable", "fixed_count", "fixed_by", "fixed_at"]
    list_filter = ["fixable", "name"]
    list_select_related = ["run", "fixed_by"]
    readonly_fields = [
        "run",
        "name",
        "description",
        "count",
        "examples",
        "fixable",
        "fixed_count",
        "fixed_at",
        "fixed_by",
    ]
    actions = ["fix_findings"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Fix (same code as reconcile --fix; safe to repeat)", permissions=["change"])
    def fix_findings(self, request, queryset):
        for finding in queryset:
            if not finding.fixable:
                self.message_user(request, f"{finding.description}: needs a person, not a fix.", level=messages.WARNING)
                continue
            repaired = finding_fix(finding=finding, staff=request.user)
            self.message_user(request, f"{finding.description}: repaired {repaired}.")
