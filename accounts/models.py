from __future__ import annotations

from typing import ClassVar

from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from core.addresses import email_canonical


class UserManager(DjangoUserManager):
    # Email is the login; there is no username.
    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An email address is required.")
        # The address in its one spelling (core/addresses.py): ValueError if it has none.
        user = self.model(email=email_canonical(email), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra_fields)


class User(AbstractUser):
    # Sign-in is by email; the name is one field. (django-stubs types these as str fields.)
    username = None  # type: ignore[assignment]
    first_name = None  # type: ignore[assignment]
    last_name = None  # type: ignore[assignment]
    name = models.CharField("name", max_length=150, blank=True)
    email = models.EmailField("email address", unique=True)
    # Set when the person deletes their account: the row stays (the credit ledger points at
    # it) but holds no personal data.
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Set by staff: a suspended person can sign in and see their things, but start no new jobs.
    suspended_at = models.DateTimeField(null=True, blank=True)
    # Opt-in: an email when a long job (a video, a batch) finishes or fails.
    notify_long_jobs = models.BooleanField("email me when a video or batch is done", default=False)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects: ClassVar[UserManager] = UserManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]
        # The admin users list's default order.
        indexes = [models.Index(fields=["-date_joined", "-id"], name="accounts_user_joined_idx")]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.name

    def get_short_name(self) -> str:
        return self.name.split(" ")[0] if self.name else self.email.split("@")[0]

    @property
    def is_suspended(self) -> bool:
        return self.suspended_at is not None

    @property
    def display_name(self) -> str:
        return self.name or self.email.split("@")[0]


class StaffAction(models.Model):
    """Who on the staff did what, to whom, when and why: the back office's trail.

    Written by the service that does the thing, in the same transaction, so nothing changes
    without its record (django-auditlog was tried: it logs `save()` diffs, misses the
    conditional `update()`s our services use, and has no reason). Append-only; never edited.
    """

    class Kind(models.TextChoices):
        GRANT = "grant", "Credits granted or corrected"
        JOB_REFUND = "job_refund", "Job refunded"
        JOB_CANCEL = "job_cancel", "Job canceled"
        JOB_RERUN = "job_rerun", "Job run again"
        USER = "user", "User details or permissions changed"
        SUSPEND = "suspend", "User suspended"
        UNSUSPEND = "unsuspend", "Suspension lifted"
        REPORT_REFUND = "report_refund", "Report refunded"
        REPORT_DISMISS = "report_dismiss", "Report dismissed"
        FINDING_FIX = "finding_fix", "Reconcile finding fixed"
        STRIPE_EVENT = "stripe_event", "Stripe event processed again"
        SETTINGS = "settings", "Setting changed (emergency switch)"
        PRICE = "price", "Price or catalog changed"
        PASSWORD_RESET = "password_reset", "Password-reset email sent"
        PASSWORD_SET = "password_set", "Password set by staff"
        REFUSED = "refused", "Refused: a change to the staff member's own account"

    staff = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # The person it was done to (a job's owner, a granted or suspended user), if any.
    user = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # What it was done to, as the ledger names things: `job:<uuid>`, `finding:<id>`, `aimodel:<id>`.
    reference = models.CharField(max_length=255, blank=True)
    reason = models.TextField(blank=True)
    # What changed: amounts, old and new values, the new job's id, how many were repaired.
    details = models.JSONField(default=dict, blank=True)
    # One record per idempotent operation (`staff:refund:<job>`): a replay records nothing more.
    key = models.CharField(max_length=255, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = "staff action"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="accounts_staffaction_time_idx"),
            models.Index(fields=["user", "-created_at"], name="accounts_staffaction_user_idx"),
            models.Index(fields=["reference", "-created_at"], name="accounts_staffaction_ref_idx"),
            models.Index(fields=["kind", "-created_at"], name="accounts_staffaction_kind_idx"),
            models.Index(fields=["staff", "-created_at"], name="accounts_staffaction_staff_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.staff} ({self.created_at:%Y-%m-%d %H:%M})"
