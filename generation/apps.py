from django.apps import AppConfig
from django.db.models.signals import post_migrate


class GenerationConfig(AppConfig):
    name = "generation"
    verbose_name = "Generation"

    def ready(self) -> None:
        from generation import signals  # noqa: F401  (deletes a deleted account's content)

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
