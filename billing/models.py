from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone


class CreditAccount(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="credit_account")
    # Cached: always equal to the sum of this account's entries, moved in the same transaction
    # as each entry. Credits are whole numbers. Only a clawback may take it below zero.
    balance = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = "credit account"

    def __str__(self) -> str:
        return f"{self.user} ({self.balance:,} credits)"


class LedgerEntryQuerySet(models.QuerySet):
    # The ledger is append-only. PostgreSQL (and SQLite) reject UPDATE and DELETE with a
    # trigger; these refuse earlier, in Python, with a clearer message.
    def update(self, **kwargs):
        raise TypeError("Ledger entries are append-only: write a new entry instead of updating one.")

    def delete(self):
        raise TypeError("Ledger entries are append-only: they are never deleted.")


class LedgerEntry(models.Model):
    class Kind(models.TextChoices):
        SIGNUP_BONUS = "signup_bonus", "Signup bonus"
        PURCHASE = "purchase", "Purchase"
        SUBSCRIPTION_GRANT = "subscription_grant", "Monthly plan credits"
        CHARGE = "charge", "Charge"
        REFUND = "refund", "Refund"
        ADJUSTMENT = "adjustment", "Adjustment"
        CLAWBACK = "clawback", "Clawback"

    class Actor(models.TextChoices):
        USER = "user", "User"
        STAFF = "staff", "Staff"
        SYSTEM = "system", "System"

    CREDIT_KINDS = (Kind.SIGNUP_BONUS, Kind.PURCHASE, Kind.SUBSCRIPTION_GRANT, Kind.REFUND)
    DEBIT_KINDS = (Kind.CHARGE, Kind.CLAWBACK)

    account = models.ForeignKey(CreditAccount, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # Signed: credits in are positive, credits out negative.
    amount = models.BigIntegerField()
    balance_after = models.BigIntegerField()
    # `charge:<job>`, `refund:<job>`, `signup:<user>`, `purchase:<checkout session>`, ...
    # Replaying an operation with its key returns the first result and changes nothing.
    idempotency_key = models.CharField(max_length=255, unique=True)
    # What the entry is about, for people and reconciliation: `job:<uuid>`, `checkout:<id>`.
    reference = models.CharField(max_length=255, blank=True, db_index=True)
    # A refund points at the charge it gives back; the one-to-one makes "once" a database rule.
    refund_of = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="refund")
    actor_type = models.CharField(max_length=16, choices=Actor.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    memo = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = LedgerEntryQuerySet.as_manager()

    class Meta:
        verbose_name = "ledger entry"
        verbose_name_plural = "ledger entries"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["account", "-created_at", "-id"], name="billing_entry_history_idx"),
            models.Index(fields=["kind", "created_at"], name="billing_entry_kind_time_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(kind__in=["signup_bonus", "purchase", "subscription_grant", "refund"], amount__gt=0)
                    | Q(kind__in=["charge", "clawback"], amount__lt=0)
                    | (Q(kind="adjustment") & ~Q(amount=0))
                ),
                name="billing_ledgerentry_sign_of_kind",
            ),
            models.CheckConstraint(
                condition=Q(kind="refund", refund_of__isnull=False) | (~Q(kind="refund") & Q(refund_of__isnull=True)),
                name="billing_ledgerentry_refund_has_charge",
            ),
            # Nothing but a clawback takes a balance below zero.
            models.CheckConstraint(
                condition=Q(balance_after__gte=0) | Q(amount__gt=0) | Q(kind="clawback"),
                name="billing_ledgerentry_no_overdraft",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount:+,} ({self.idempotency_key})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("Ledger entries are append-only: write a new entry instead of updating one.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Ledger entries are append-only: they are never deleted.")

    @property
    def job_id(self) -> str | None:
        prefix, _, value = self.reference.partition(":")
        return value if prefix == "job" and value else None

    @property
    def reference_url(self) -> str | None:
        # The ledger knows nothing of jobs; it only links to the page named for them, if any.
        if self.job_id:
            try:
                return reverse("job_detail", args=[self.job_id])
            except NoReverseMatch:
                return None
        return None
