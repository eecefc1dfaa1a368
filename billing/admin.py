from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.models import User
from billing.forms import AdjustCreditsForm
from billing.models import CreditAccount, LedgerEntry
from billing.services import LedgerError, credits_adjust

RECENT_ENTRIES = 20


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
    fields = [
        "created_at",
        "kind",
        "amount",
        "balance_after",
        "idempotency_key",
        "actor_type",
        "actor",
        "memo",
    ]
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
    list_display = ["user_email", "balance", "updated_at"]
    list_select_related = ["user"]
    search_fields = ["user__email", "user__name"]
    ordering = ["-updated_at"]
    readonly_fields = ["user", "balance", "created_at", "updated_at", "ledger_link"]
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

    @admin.display(description="All entries")
    def ledger_link(self, account: CreditAccount) -> str:
        url = reverse("admin:billing_ledgerentry_changelist") + f"?account__id__exact={account.pk}"
        return format_html('<a href="{}">Full ledger</a> · <a href="{}">Grant or correct credits</a>', url,
                           reverse("admin:billing_adjust_credits") + f"?users={account.user_id}")  # fmt: skip

    @admin.action(description="Grant or correct credits…")
    def adjust_credits(self, request: HttpRequest, queryset: QuerySet[CreditAccount]) -> HttpResponse:
        user_ids = ",".join(str(pk) for pk in queryset.values_list("user_id", flat=True))
        return redirect(reverse("admin:billing_adjust_credits") + f"?users={user_ids}")

    def get_urls(self):
        extra = [
            path("adjust/", self.admin_site.admin_view(self.adjust_view), name="billing_adjust_credits"),
        ]
        return extra + super().get_urls()

    def adjust_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm("billing.change_creditaccount"):
            raise PermissionDenied
        raw_ids = request.GET.get("users", "")
        user_ids = [int(part) for part in raw_ids.split(",") if part.strip().isdigit()]
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
                        staff=request.user,
                    )  # fmt: skip
                except LedgerError as error:
                    messages.error(request, f"{user.email}: {error}")
                else:
                    messages.success(
                        request, f"{user.email}: {entry.amount:+,} credits, balance {entry.balance_after:,}."
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
        "amount",
        "balance_after",
        "idempotency_key",
        "actor_label",
        "memo",
    ]
    list_filter = ["kind", "actor_type", "created_at"]
    list_select_related = ["account__user", "actor"]
    search_fields = ["idempotency_key", "reference", "account__user__email", "memo"]
    date_hierarchy = "created_at"
    show_full_result_count = False

    @admin.display(description="User", ordering="account__user__email")
    def user_email(self, entry: LedgerEntry) -> str:
        return entry.account.user.email

    @admin.display(description="By")
    def actor_label(self, entry: LedgerEntry) -> str:
        return (
            f"{entry.get_actor_type_display()}: {entry.actor.email}" if entry.actor else entry.get_actor_type_display()
        )
