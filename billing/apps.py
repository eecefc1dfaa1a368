from django.apps import AppConfig

from core.references import REFERENCE_KINDS, ReferencePages


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        # Imported here, not at the top: they import models, which exist only once apps are ready.
        from billing import signals  # noqa: F401  (connects the signup-bonus receivers)
        from billing.reconcile import ledger, stripe_checks
        from billing.reconcile.findings import checks_register

        checks_register([*ledger.CHECKS, *stripe_checks.CHECKS])

        # The staff trail links billing's things to their admin pages.
        for kind, admin_page in [
            ("finding", "admin:billing_reconcilefinding_change"),
            ("creditpack", "admin:billing_creditpack_change"),
            ("plan", "admin:billing_plan_change"),
            ("stripeevent", "admin:billing_stripeevent_change"),
        ]:
            REFERENCE_KINDS.register(kind, ReferencePages(admin=admin_page))
