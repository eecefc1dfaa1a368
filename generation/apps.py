from __future__ import annotations

from django.apps import AppConfig
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
        from billing.references import reference_register
        from generation import signals  # noqa: F401  (deletes a deleted account's content)

        # Ledger entries of a job (`job:<uuid>`) link to the job's page.
        reference_register("job", link=_job_page)
