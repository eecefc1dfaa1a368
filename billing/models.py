from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.references import reference_label, reference_url


class CreditAccount(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="credit_account")
    # Cached: always equal to the sum of this account's entries, moved in the same transaction
    # as each entry. Credits are whole numbers. Only a clawback may take it below zero.
    balance = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = "credit account"
        indexes = [
            # The admin's order, and incremental reconciliation (accounts moved since its last run).
            models.Index(fields=["-updated_at"], name="billing_account_updated_idx"),
            # The few accounts in debt, for the outstanding credits in /metrics (billing/metrics.py).
            models.Index(fields=["balance"], condition=Q(balance__lt=0), name="billing_account_in_debt_idx"),
        ]

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

    # Not a column: the billing page sets what to say instead of a link to a deleted job.
    gone_label: str

    class Meta:
        verbose_name = "ledger entry"
        verbose_name_plural = "ledger entries"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["account", "-created_at", "-id"], name="billing_entry_history_idx"),
            models.Index(fields=["kind", "created_at"], name="billing_entry_kind_time_idx"),
            # The admin list's default order, and every "since" range (admin home, statistics).
            models.Index(fields=["-created_at", "-id"], name="billing_entry_recent_idx"),
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
    def reference_url(self) -> str | None:
        return reference_url(self.reference)

    @property
    def reference_label(self) -> str:
        return reference_label(self.reference)


# --- Stripe: what is sold, who the customers are, and what Stripe told us -------------------


class Offer(models.Model):
    """What the billing page sells through Stripe Checkout: a pack or a plan, at a Stripe price."""

    name = models.CharField(max_length=80)
    credits = models.PositiveIntegerField(help_text="Credits granted for each confirmed payment.")
    # Money is an integer number of cents (the currency's minor unit), never a float; shown on
    # the site only. What the buyer pays is the Stripe price's amount, so keep the two equal.
    price_cents = models.PositiveIntegerField(help_text="Price shown on the site, in cents: 500 is 5.00.")
    # ISO 4217, lower case, as Stripe writes it.
    currency = models.CharField(max_length=3, default="usd")
    stripe_price_id = models.CharField(
        max_length=255,
        unique=True,
        help_text="The Stripe price (price_...) Checkout charges: one-time for a pack, monthly for a plan.",
    )
    active = models.BooleanField(default=True, help_text="Offered on the billing page. Existing subscribers keep it.")
    order = models.PositiveSmallIntegerField(default=0, help_text="Smaller numbers are shown first.")

    class Meta:
        abstract = True
        ordering = ["order", "price_cents", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(credits__gt=0), name="billing_%(class)s_credits_positive"),
            models.CheckConstraint(condition=Q(currency__regex=r"^[a-z]{3}$"), name="billing_%(class)s_currency_iso"),
        ]


class CreditPack(Offer):
    """A one-time purchase of credits through Stripe Checkout (mode "payment")."""

    def __str__(self) -> str:
        return f"{self.name} ({self.credits:,} credits)"


class Plan(Offer):
    """A monthly subscription through Stripe Checkout (mode "subscription"): credits per paid invoice."""

    def __str__(self) -> str:
        return f"{self.name} ({self.credits:,} credits a month)"


class StripeCustomer(models.Model):
    # One Stripe customer per user, created once: the unique user and customer id make a race
    # between two first purchases end with one row (the loser reads the winner's).
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="stripe_customer")
    customer_id = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = "Stripe customer"

    def __str__(self) -> str:
        return self.customer_id


class CheckoutSession(models.Model):
    """Our copy of a Checkout session we created: whose it is and what it sells.

    The success page finds it by session id *and* user, so another user's id shows nothing.
    Fulfilment reads what to grant from the session itself (its metadata, re-read from Stripe).
    """

    class Mode(models.TextChoices):
        PAYMENT = "payment", "Credit pack"
        SUBSCRIPTION = "subscription", "Monthly plan"

    class PaymentState(models.TextChoices):
        OPEN = "open", "Waiting for the payment"
        PROCESSING = "processing", "Payment processing"
        PAID = "paid", "Paid"
        FAILED = "failed", "Payment failed"
        EXPIRED = "expired", "Expired"

    session_id = models.CharField(max_length=255, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="checkout_sessions")
    mode = models.CharField(max_length=16, choices=Mode.choices)
    pack = models.ForeignKey(CreditPack, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    plan = models.ForeignKey(Plan, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    credits = models.PositiveIntegerField()
    # Integer cents of `currency`, as offered when the session was created.
    amount_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    payment_state = models.CharField(max_length=16, choices=PaymentState.choices, default=PaymentState.OPEN)
    # A subscription's first invoice: its grant (`invoice:<id>`) is this session's credits.
    invoice_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "Checkout session"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.session_id

    @property
    def grant_key(self) -> str | None:
        if self.mode == self.Mode.PAYMENT:
            return f"purchase:{self.session_id}"
        return f"invoice:{self.invoice_id}" if self.invoice_id else None

    @property
    def grant(self) -> LedgerEntry | None:
        key = self.grant_key
        return LedgerEntry.objects.filter(idempotency_key=key).first() if key else None


class Subscription(models.Model):
    """A user's monthly plan as Stripe last described it (re-read on every subscription event)."""

    class Status(models.TextChoices):
        # Stripe's subscription statuses, verbatim.
        INCOMPLETE = "incomplete", "Waiting for the first payment"
        INCOMPLETE_EXPIRED = "incomplete_expired", "First payment never arrived"
        TRIALING = "trialing", "Trial"
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Payment overdue"
        UNPAID = "unpaid", "Unpaid"
        CANCELED = "canceled", "Canceled"
        PAUSED = "paused", "Paused"

    # Statuses in which the user has a plan and must not start a second one.
    CURRENT = (Status.INCOMPLETE, Status.TRIALING, Status.ACTIVE, Status.PAST_DUE, Status.UNPAID, Status.PAUSED)
    # Statuses in which Stripe still bills the plan: two of these for one person is one too many.
    BILLING = (Status.TRIALING, Status.ACTIVE, Status.PAST_DUE, Status.UNPAID)

    subscription_id = models.CharField(max_length=255, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="subscriptions")
    plan = models.ForeignKey(Plan, null=True, blank=True, on_delete=models.SET_NULL, related_name="subscriptions")
    status = models.CharField(max_length=32, choices=Status.choices)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    cancel_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.subscription_id} ({self.status})"

    @property
    def is_current(self) -> bool:
        return self.status in self.CURRENT

    @property
    def ends_at(self):
        # Canceled at the period end (or at a set date) from the portal: it still runs until then.
        if self.cancel_at is not None:
            return self.cancel_at
        return self.current_period_end if self.cancel_at_period_end else None


class StripeEvent(models.Model):
    """Every webhook event Stripe sent, recorded under its id before anything is done with it.

    received -> processed | ignored | failed; a failed event is processed again when Stripe
    retries it (or staff use "Process again"). Processing is idempotent, so a duplicate
    delivery that arrives while the first is still running may safely do the same work.
    """

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored (not handled)"
        FAILED = "failed", "Failed"

    DONE = (Status.PROCESSED, Status.IGNORED)

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100, db_index=True)
    # The id of the event's object (cs_..., in_..., ch_...), to find every event about one thing.
    object_id = models.CharField(max_length=255, blank=True, db_index=True)
    livemode = models.BooleanField(default=False)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED, db_index=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "Stripe event"
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class ReconcileRun(models.Model):
    """One run of `reconcile` (hourly, from the command, or started in the admin) and what it found."""

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        COMMAND = "command", "Command"
        ADMIN = "admin", "Admin"

    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    started_at = models.DateTimeField(default=timezone.now, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    checks = models.PositiveSmallIntegerField(default=0)
    # What `--fix` repaired before the final check: {finding name: how many}.
    fixed = models.JSONField(default=dict, blank=True)
    # A full pass read every row; otherwise the checks read what changed from `since` on (the
    # earliest start of any check: each starts after the last run that found it clean).
    full = models.BooleanField(default=False)
    since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = "reconciliation run"

    def __str__(self) -> str:
        return f"Reconciliation {self.started_at:%Y-%m-%d %H:%M} ({'all clear' if self.ok else 'problems'})"


class ReconcileFinding(models.Model):
    """A check of a run that found something; staff can fix it with the same code as --fix."""

    run = models.ForeignKey(ReconcileRun, on_delete=models.CASCADE, related_name="findings")
    name = models.CharField(max_length=64)
    description = models.CharField(max_length=255)
    count = models.PositiveIntegerField()
    examples = models.JSONField(default=list, blank=True)
    fixable = models.BooleanField(default=False)
    fixed_count = models.PositiveIntegerField(null=True, blank=True)
    fixed_at = models.DateTimeField(null=True, blank=True)
    fixed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["run", "name"]

    def __str__(self) -> str:
        return f"{self.description}: {self.count}"


class SignupBonusClaim(models.Model):
    """A mailbox that has had its signup bonus, ever: one bonus per mailbox, whatever the account.

    Only a keyed hash (HMAC) of the normalized address is kept, so a deleted account's address
    is forgotten (it cannot be read back or guessed without the key) and still recognized."""

    mailbox_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    def __str__(self) -> str:
        return f"Signup bonus claim {self.mailbox_hash[:12]}…"
