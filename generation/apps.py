from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "generation"
    verbose_name = "Generation"

    def ready(self) -> None:
        from billing.pricing import catalog_register
        from generation import signals  # noqa: F401  (deletes a deleted account's content)
        from generation.selectors import catalog_credit_costs

        # Pages in billing show job prices from the catalog, which billing does not know.
        catalog_register(catalog_credit_costs)
