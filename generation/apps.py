from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class GenerationConfig(AppConfig):
    name = "generation"
    verbose_name = "Generation"

    def ready(self) -> None:
        from billing.pricing import catalog_register
        from dreampixel.references import reference_register
        from generation import signals  # noqa: F401  (account deletion, the cluster heartbeat)
        from generation.selectors import catalog_credit_costs

        # Pages in billing show job prices from the catalog, which billing does not know.
        catalog_register(catalog_credit_costs)

        # Ledger entries of a job (`job:<uuid>`) link to the job's page, staff pages to its admin page.
        reference_register("job", page="job_detail", admin="admin:generation_job_change", label="View job")
        reference_register("aimodel", admin="admin:generation_aimodel_change")
        reference_register("sitesettings", admin="admin:generation_sitesettings_change")

        # Every `migrate` brings the schedules up to date, so a schedule added in a release reaches
        # a site whose release step only runs `migrate`. Sent once per migrate for this app.
        post_migrate.connect(_install_schedules, sender=self, dispatch_uid="generation_install_schedules")


def _install_schedules(sender, apps=None, using="default", plan=None, **kwargs) -> None:
    from generation.schedules import install_schedules

    try:
        schedule_model = (apps or _global_apps()).get_model("django_q", "Schedule")
    except LookupError:  # migrated back past django_q's tables: nothing to schedule into
        return
    install_schedules(schedule_model, using=using)


def _global_apps():
    from django.apps import apps

    return apps
