from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate

from billing.pricing import PRICE_LISTS
from core.middleware import UPLOAD_BODY_LIMITS
from core.references import REFERENCE_KINDS, ReferencePages


class GenerationConfig(AppConfig):
    name = "generation"
    verbose_name = "Generation"

    def ready(self) -> None:
        # Imported here, not at the top: they import models, which exist only once apps are ready.
        from billing.reconcile.findings import checks_register
        from generation import (
            reconcile,
            signals,  # account deletion removes the person's content; a catalog edit its kept prices
        )
        from generation.models import Batch
        from generation.selectors import catalog_making_costs, deleted_job_ids
        from generation.uploads import MAX_UPLOAD_BYTES

        # Pages in billing show job prices from the catalog, which billing does not know.
        PRICE_LISTS.register("catalog", catalog_making_costs)
        # Prices kept from before a migration are not served after it.
        post_migrate.connect(signals.catalog_migrated, sender=self, dispatch_uid="generation_catalog_migrated")

        # A job and its ledger entries agree: reconcile's checks of both sides.
        checks_register(reconcile.CHECKS)

        # Ledger entries of a job (`job:<uuid>`) link to the job's page, staff pages to its admin page.
        REFERENCE_KINDS.register(
            "job",
            ReferencePages(
                page="job_detail",
                admin="admin:generation_job_change",
                label="View job",
                gone=deleted_job_ids,
                gone_label="Job deleted",
            ),
        )
        REFERENCE_KINDS.register("aimodel", ReferencePages(admin="admin:generation_aimodel_change"))
        REFERENCE_KINDS.register("sitesettings", ReferencePages(admin="admin:generation_sitesettings_change"))

        # The views that take photos may receive a batch's ten photos and the form around them;
        # the single edit gets the same room, so a photo a little over the limit hears from its
        # form why, instead of a bare 413.
        photos = Batch.MAX_ITEMS * MAX_UPLOAD_BYTES + UPLOAD_OVERHEAD_BYTES
        for url_name in ("create_edit", "batch_new"):
            UPLOAD_BODY_LIMITS.register(url_name, photos)


# Form fields and the multipart envelope around the photos of one upload request.
UPLOAD_OVERHEAD_BYTES = 1024 * 1024
