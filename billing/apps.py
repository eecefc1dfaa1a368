from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from billing import signals  # noqa: F401  (connects the signup-bonus receivers)
        from dreampixel.references import reference_register

        # The staff trail links billing's things to their admin pages.
        reference_register("finding", admin="admin:billing_reconcilefinding_change")
        reference_register("creditpack", admin="admin:billing_creditpack_change")
        reference_register("plan", admin="admin:billing_plan_change")
        reference_register("stripeevent", admin="admin:billing_stripeevent_change")
