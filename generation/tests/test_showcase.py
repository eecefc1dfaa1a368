"""The landing page's showcase: staff pick shared results in the admin; prices in money."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from billing.models import CreditPack
from generation.models import ShowcaseItem
from generation.services import job_create, job_run, job_share, job_unshare
from generation.tests.factories import AIModelFactory, local_model
from generation.tests.photos import photo_bytes
from generation.uploads import image_validate

pytestmark = pytest.mark.django_db


def _shared_edit(user):
    model = AIModelFactory(key="local-edit", kind="image_edit", aspect_ratios={"original": "original"})
    photo = image_validate(SimpleUploadedFile("p.png", photo_bytes("PNG", size=(40, 30), colour=(9, 90, 200))))
    job = job_create(user=user, model=model, prompt="Golden hour light", aspect_ratio="original", photo=photo)
    job_run(job_id=job.id)
    job.refresh_from_db()
    job_share(job=job)
    job.refresh_from_db()
    return job


def test_staff_add_a_shared_result_in_the_admin_and_the_landing_shows_it_with_before_and_after(
    client, creator, staff_client
):
    job = _shared_edit(creator)
    response = staff_client.post(
        reverse("admin:generation_showcaseitem_add"),
        {"job": job.pk, "caption": "Sunset, warmer", "position": 1, "active": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    item = ShowcaseItem.objects.get()
    assert item.added_by == staff_client.staff

    page = client.get("/").content.decode()
    assert "Made with Dream Pixel" in page and "Sunset, warmer" in page
    assert f'src="/s/{job.share_token}/before/"' in page and f'src="/s/{job.share_token}/media/"' in page
    before = client.get(f"/s/{job.share_token}/before/")
    assert before.status_code == 200 and b"".join(before.streaming_content) == job.source.file.open().read()

    # The owner stops sharing: it leaves the landing page at once, and its photo is private again.
    job_unshare(job=job)
    assert "Made with Dream Pixel" not in client.get("/").content.decode()


def test_an_unshared_or_unfinished_result_cannot_be_featured(creator):
    job = job_create(user=creator, model=local_model(), prompt="A kite", aspect_ratio="square")
    with pytest.raises(ValidationError, match="finished"):
        ShowcaseItem(job=job).full_clean()
    job_run(job_id=job.id)
    job.refresh_from_db()
    with pytest.raises(ValidationError, match="share"):
        ShowcaseItem(job=job).full_clean()


def test_the_landing_shows_prices_in_money_next_to_credits(client):
    CreditPack.objects.all().delete()
    CreditPack.objects.create(name="Starter", credits=5_000, price_cents=500, currency="usd", order=0)
    # The prices come from the catalog: an image model at 500 credits, an edit at 1,000.
    AIModelFactory(key="landing-image", kind="image", credit_cost=500)
    AIModelFactory(key="landing-edit", kind="image_edit", credit_cost=1_000, aspect_ratios={"original": "original"})
    page = client.get("/").content.decode()
    assert "about $0.50" in page  # 500 credits at $5 for 5,000
    assert "about $1.00" in page
    assert "Starter pack" in page
