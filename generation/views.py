from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from storages.backends.s3 import S3Storage

from billing.services import InsufficientCredits
from generation.forms import JobCreateForm
from generation.models import Job, JobOutput, Kind
from generation.selectors import gallery_outputs, user_jobs
from generation.services import GenerationError, job_create, job_delete

GALLERY_PAGE_SIZE = 24


def _job_for_user(request: HttpRequest, job_id: uuid.UUID) -> Job:
    # Another person's job is a 404, never a 403: its existence is not ours to confirm.
    return get_object_or_404(user_jobs(user=request.user).select_related("model"), pk=job_id)


@login_required
@require_http_methods(["GET", "POST"])
def create(request: HttpRequest) -> HttpResponse:
    form = JobCreateForm(request.POST or None, initial={"form_token": uuid.uuid4()})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            job = job_create(
                user=request.user,
                model=data["model"],
                prompt=data["prompt"],
                aspect_ratio=data["aspect_ratio"],
                seed=data["seed"],
                form_token=data["form_token"],
            )
        except InsufficientCredits as error:
            form.add_error(None, str(error))
            form.short_of_credits = True
        except GenerationError as error:
            form.add_error(None, str(error))
        else:
            return redirect(job)
    return render(request, "generation/create.html", {"form": form})


@login_required
@require_GET
def job_detail(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    job = _job_for_user(request, job_id)
    outputs = list(job.outputs.all()) if job.status == Job.Status.SUCCEEDED else []
    return render(request, "generation/job_detail.html", {"job": job, "outputs": outputs, "again_token": uuid.uuid4()})


@login_required
@require_GET
def job_status(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    # The fragment open job pages poll; it stops polling itself once the job is final.
    job = _job_for_user(request, job_id)
    outputs = list(job.outputs.all()) if job.status == Job.Status.SUCCEEDED else []
    response = render(request, "generation/job_detail.html#status", {"job": job, "outputs": outputs})
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def job_again(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    job = _job_for_user(request, job_id)
    try:
        token = uuid.UUID(request.POST.get("form_token", ""))
    except ValueError:
        token = None
    try:
        new_job = job_create(
            user=request.user,
            model=job.model,
            prompt=job.prompt,
            aspect_ratio=job.aspect_ratio,
            seed=job.seed,
            form_token=token,
        )
    except (InsufficientCredits, GenerationError) as error:
        messages.error(request, str(error))
        return redirect(job)
    return redirect(new_job)


@login_required
@require_POST
def job_remove(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    job = _job_for_user(request, job_id)
    try:
        job_delete(job=job)
    except GenerationError as error:
        messages.error(request, str(error))
        return redirect(job)
    messages.success(request, "The job and its files were deleted.")
    return redirect("gallery")


@login_required
@require_GET
def gallery(request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("kind") or None
    if kind not in (None, *Kind.values):
        kind = None
    page = Paginator(gallery_outputs(user=request.user, kind=kind), GALLERY_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "generation/gallery.html", {"page": page, "kind": kind, "kinds": Kind.choices})


@login_required
@require_GET
def output_file(request: HttpRequest, output_id: uuid.UUID, variant: str = "file") -> HttpResponse:
    output = get_object_or_404(
        JobOutput.objects.select_related("job"),
        pk=output_id,
        job__user=request.user,
        job__deleted_at__isnull=True,
    )
    name = output.thumbnail.name if variant == "thumbnail" else output.file.name
    if not name:
        raise Http404
    download = request.GET.get("download") == "1"
    extension = name.rsplit(".", 1)[-1]
    filename = f"dreampixel-{output.job_id.hex[:8]}-{output.index + 1}.{extension}"
    if isinstance(default_storage, S3Storage):
        parameters = {"ResponseContentDisposition": f'attachment; filename="{filename}"'} if download else None
        url = default_storage.url(name, parameters=parameters, expire=settings.FILE_URL_EXPIRE)
        response = redirect(url)
        # Shorter than the signed URL's own life, so a cached redirect never points at an expired one.
        response["Cache-Control"] = f"private, max-age={settings.FILE_URL_EXPIRE // 2}"
        return response
    response = FileResponse(default_storage.open(name), as_attachment=download, filename=filename)
    response["Cache-Control"] = "private, max-age=3600"
    return response
