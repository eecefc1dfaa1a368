"""The sign-in backends: Django's and allauth's, with a cheaper lookup of the signed-in person.

Every signed-in request loads its user by id (`get_user`). Through the ORM that one-row read
cost more to build and compile than to run, and it is the largest part of what any signed-in
page pays before doing its own work (docs/benchmarks.md, "Where a signed-in page's floor
goes"). Here the statement is written out once from the model's columns; `raw()` still
converts the values as the ORM does, on SQLite as on PostgreSQL. What counts as signed in is
unchanged: an active user whose session hash matches (Django checks that after `get_user`).
"""

from __future__ import annotations

from functools import cache

from allauth.account.auth_backends import AuthenticationBackend as AllauthBackend
from django.contrib.auth.backends import ModelBackend as DjangoModelBackend

from accounts.models import User

# Sessions written before these classes existed name Django's and allauth's own, which apply
# the same rules; the session store reads those names as these (dreampixel/sessions.py).
RENAMED = {
    "django.contrib.auth.backends.ModelBackend": "accounts.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend": "accounts.backends.AuthenticationBackend",
}


@cache
def _user_by_id() -> str:
    columns = ", ".join(field.column for field in User._meta.concrete_fields)
    return f"SELECT {columns} FROM {User._meta.db_table} WHERE {User._meta.pk.column} = %s"  # noqa: S608 (names from the model)


class UserById:
    def get_user(self, user_id):
        user = next(iter(User.objects.raw(_user_by_id(), [user_id])), None)
        return user if user is not None and self.user_can_authenticate(user) else None


class ModelBackend(UserById, DjangoModelBackend):
    """Email and password (the dev sign-in, the admin)."""


class AuthenticationBackend(UserById, AllauthBackend):
    """allauth's: sign-in by email code and through Google."""
