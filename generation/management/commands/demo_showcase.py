from __future__ import annotations

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import User
from billing.management.commands.demo_account import DEMO_EMAIL
from billing.services import credits_adjust
from generation.models import AIModel, Job, ShowcaseItem
from generation.providers.local import render_image
from generation.services import job_create, job_run, job_share
from generation.uploads import image_validate

# What the demo account makes for the landing page: two pictures and an edit of a third.
PICTURES = [
    ("A lighthouse on a cliff in a storm, oil painting", "landscape", 11),
    ("A paper boat on a rainy street at night, neon reflections", "portrait", 23),
]
EDIT = ("A harbour town at dawn", "Make it golden hour", 37)


class Command(BaseCommand):
    help = (
        "Give the landing page a showcase on a fresh development database: the demo account "
        "(run demo_account first) makes a few results with the preview renderer, right here, "
        "shares them and features them. The credits they cost are put back with an adjustment. "
        "Does nothing when the showcase already has an item. For development only."
    )

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("demo_showcase makes demo content: not in production.")
        if ShowcaseItem.objects.filter(active=True).exists():
            self.stdout.write("The landing page already has a showcase.")
            return
        user = User.objects.filter(email=DEMO_EMAIL).first()
        if user is None:
            raise CommandError("No demo account: run `manage.py demo_account` first.")
        picture = AIModel.objects.filter(key="local-preview", enabled=True).first()
        editor = AIModel.objects.filter(key="local-edit", enabled=True).first()
        if picture is None or editor is None:
            raise CommandError("The preview renderer's catalog entries are missing or disabled.")
        jobs = [
            job_create(user=user, model=picture, prompt=prompt, aspect_ratio=shape, seed=seed)
            for prompt, shape, seed in PICTURES
        ]
        scene, change, seed = EDIT
        photo = SimpleUploadedFile("harbour.png", render_image(prompt=scene, seed=seed, ratio="3:2"), "image/png")
        jobs.append(
            job_create(
                user=user, model=editor, prompt=change, aspect_ratio="original", seed=seed, photo=image_validate(photo)
            )
        )
        for position, job in enumerate(jobs):
            job_run(job_id=job.id)  # the preview renderer draws in this process, in milliseconds
            job.refresh_from_db()
            if job.status != Job.Status.SUCCEEDED:
                raise CommandError(f"The demo job {job.id} did not finish: {job.error_message}")
            job_share(job=job)
            with transaction.atomic():
                ShowcaseItem.objects.create(job=job, position=position)
                # The demo account keeps its credits for the person trying it out.
                credits_adjust(
                    user=user, amount=job.cost, memo="Demo showcase, on the house", key=f"adjust:showcase:{job.id}"
                )
        self.stdout.write(self.style.SUCCESS(f"The landing page shows {len(jobs)} results made by {DEMO_EMAIL}."))
