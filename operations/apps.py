from __future__ import annotations

from django.apps import AppConfig
from django.apps import apps as global_apps
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_migrate


class OperationsConfig(AppConfig):
    # What runs the site as a whole, above the apps: the admin home and the user admin, the
    # schedules, cleanup, alerts, the supervised worker clusters and the staff roles.
    name = "operations"
    verbose_name = "Operations"

    def ready(self) -> None:
        # Imported here, not at the top: it imports models, which exist only once apps are ready.
        from operations import signals  # noqa: F401  (the cluster heartbeat)

        # Every `migrate` brings the schedules up to date, so a schedule added in a release reaches
        # a site whose release step only runs `migrate`. Sent once per migrate for this app.
        post_migrate.connect(_install_schedules, sender=self, dispatch_uid="operations_install_schedules")


def _install_schedules(sender, apps=None, using="default", plan=None, **kwargs) -> None:
    from operations.schedules import install_schedules  # django_q's models: loaded by now

    try:
        schedule_model = (apps or global_apps).get_model("django_q", "Schedule")
    except LookupError:  # migrated back past django_q's tables: nothing to schedule into
        return
    install_schedules(schedule_model, using=using)


class AdminConfig(admin_apps.AdminConfig):
    # Django's admin with the back office's site (two-factor sign-in, the admin home), named in
    # INSTALLED_APPS in place of django.contrib.admin. Not this app's own config: default False.
    default = False
    default_site = "operations.admin_site.AdminSite"
