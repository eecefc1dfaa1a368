from django.apps import AppConfig


class CoreConfig(AppConfig):
    # The floor every app stands on: helpers that import no app of this project.
    name = "core"
    verbose_name = "Core"
