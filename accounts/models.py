from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models
from django.db.models.functions import Lower


class UserManager(DjangoUserManager):
    # Email is the login; there is no username.
    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
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
    username = None
    first_name = None
    last_name = None
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
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

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
