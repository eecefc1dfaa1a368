from django import forms
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, AdminUserCreationForm
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import transaction

from accounts.admin_trail import ask_reason
from accounts.models import StaffAction, User
from accounts.services import staff_action_record, user_password_reset_send
from core.addresses import UnsafeAddress, email_canonical

# Who may grant power: only superusers. Anyone else who could edit these fields, a group's
# permissions or another staff account could make themselves (or a friend) anything.
SUPERUSER_ONLY_FIELDS = ["is_staff", "is_superuser", "groups", "user_permissions"]


class UserAddForm(AdminUserCreationForm):
    def clean_email(self) -> str:
        # The one spelling of the address, as sign-up stores it (core/addresses.py).
        try:
            return email_canonical(self.cleaned_data["email"])
        except UnsafeAddress as refused:
            raise forms.ValidationError(str(refused)) from None


class StaffPasswordChangeForm(AdminPasswordChangeForm):
    reason = forms.CharField(
        label="Reason for setting this password", widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        max_length=2000, help_text="Kept in the staff trail with your name. Prefer sending a reset email.",
    )  # fmt: skip


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["-date_joined"]
    list_display = ["email", "name", "is_active", "is_staff", "date_joined", "last_login"]
    list_filter = ["is_active", "is_staff", "is_superuser"]
    search_fields = ["email", "name"]
    readonly_fields = ["date_joined", "last_login", "deleted_at"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Personal info", {"fields": ["name"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Dates", {"fields": ["date_joined", "last_login", "deleted_at"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]
    add_form = UserAddForm
    change_password_form = StaffPasswordChangeForm
    change_user_password_template = "admin/accounts/user/change_password.html"  # noqa: S105 (a template)
    actions = ["send_password_reset"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or request.user.is_superuser:
            return fieldsets
        # The password field links to the page that sets one: superusers only (below).
        return [(name, {**opts, "fields": [f for f in opts["fields"] if f != "password"]}) for name, opts in fieldsets]

    def user_change_password(self, request, id, form_url=""):
        # Whoever sets a person's password can sign in as them. Support sends a reset email
        # instead (the person chooses the password); a superuser gives a reason, and the new
        # password and its record are written in one transaction (log_change, below).
        if not request.user.is_superuser:
            raise PermissionDenied
        with transaction.atomic():
            return super().user_change_password(request, id, form_url)

    def log_change(self, request, obj, message):
        entry = super().log_change(request, obj, message)
        if request.resolver_match is not None and request.resolver_match.url_name == "auth_user_password_change":
            # Called by user_change_password once its form (reason included) is valid and saved.
            staff_action_record(
                staff=request.user, kind=StaffAction.Kind.PASSWORD_SET, user=obj, reference=f"user:{obj.pk}",
                reason=request.POST.get("reason", ""), details={"usable": obj.has_usable_password()},
            )  # fmt: skip
        return entry

    def people_to_act_on(self, request, queryset):
        """The chosen accounts an action may touch: staff accounts only by a superuser."""
        if request.user.is_superuser:
            return queryset
        return queryset.filter(is_staff=False, is_superuser=False)

    @admin.action(description="Send a password-reset email…", permissions=["change"])
    def send_password_reset(self, request, queryset):
        queryset = self.people_to_act_on(request, queryset)
        reason = ask_reason(self, request, queryset, title="Send these people a password-reset email")
        if not isinstance(reason, str):
            return reason
        sent = sum(
            user_password_reset_send(request=request, user=u, staff=request.user, reason=reason) for u in queryset
        )
        self.message_user(request, f"Sent {sent} password-reset email(s); the person chooses the new password.")

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields += [name for name in SUPERUSER_ONLY_FIELDS if name not in fields]
        return fields

    def has_change_permission(self, request, obj=None) -> bool:
        # A staff account (its email, its password) is changed by superusers only.
        if obj is not None and (obj.is_staff or obj.is_superuser) and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and (obj.is_staff or obj.is_superuser) and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(DjangoGroupAdmin):
    # A group is a bundle of permissions: changing one is granting power.
    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser
