from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "generation"
    verbose_name = "Generation"

    def ready(self) -> None:
        from generation import signals  # noqa: F401  (account deletion, the cluster heartbeat)
