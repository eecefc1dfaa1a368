from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.urls import NoReverseMatch, reverse


def _job_page(job_id: str) -> str | None:
    try:
        return reverse("job_detail", args=[job_id])
    except NoReverseMatch:  # not a job id after all
        return None


class GenerationConfig(AppConfig):
    name = "generation"
    verbose_name = "Generation"

    def ready(self) -> None:
        from billing.pricing import catalog_register
        from billing.references import reference_register
        from generation import signals  # noqa: F401  (account deletion, the cluster heartbeat)
        from generation.selectors import catalog_credit_costs

        # Pages in billing show job prices from the catalog, which billing does not know.
        catalog_register(catalog_credit_costs)

        # Ledger entries of a job (`job:<uuid>`) link to the job's page.
        reference_register("job", link=_job_page)

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
