from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from storages.backends.s3 import S3Storage

from billing.services import InsufficientCredits
from dreampixel.ratelimits import limit_job_creation
from generation.forms import FORMS_BY_KIND, BatchForm
from generation.models import Job, JobOutput, Kind, SiteSettings, Upload
from generation.selectors import gallery_outputs, user_batches, user_jobs
from generation.services import (
    GenerationError,
    batch_create,
    job_cancel,
    job_create,
    job_delete,
    job_report,
    job_share,
    job_unshare,
)

GALLERY_PAGE_SIZE = 24


def _job_for_user(request: HttpRequest, job_id: uuid.UUID) -> Job:
    # Another person's job is a 404, never a 403: its existence is not ours to confirm.
    return get_object_or_404(user_jobs(user=request.user).select_related("model", "source", "report"), pk=job_id)


def _serve(name: str, *, filename: str, download: bool) -> HttpResponse:
    """A stored file, after the caller checked who may see it: a redirect to a short-lived
    signed URL on S3, the file itself from local storage."""
    if not name:
        raise Http404
    if isinstance(default_storage, S3Storage):
        parameters = {"ResponseContentDisposition": f'attachment; filename="{filename}"'} if download else None
        response = redirect(default_storage.url(name, parameters=parameters, expire=settings.FILE_URL_EXPIRE))
        # Shorter than the signed URL's own life, so a cached redirect never points at an expired one.
        response["Cache-Control"] = f"private, max-age={settings.FILE_URL_EXPIRE // 2}"
        return response
    response = FileResponse(default_storage.open(name), as_attachment=download, filename=filename)
    response["Cache-Control"] = "private, max-age=3600"
    return response


# --- Creating ----------------------------------------------------------------------------


def _form_errors_from(form, error: Exception) -> None:
    form.add_error(None, str(error))
    form.short_of_credits = isinstance(error, InsufficientCredits)


@login_required
@require_http_methods(["GET", "POST"])
@limit_job_creation
def create(request: HttpRequest, kind: str = "image") -> HttpResponse:
    form_class = FORMS_BY_KIND[kind]
    form = form_class(request.POST or None, request.FILES or None, initial={"form_token": uuid.uuid4()})
    switch = SiteSettings.current()
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            job = job_create(
                user=request.user,
                model=data["model"],
                prompt=data["prompt"],
                aspect_ratio=data.get("aspect_ratio") or "original",
                seed=data.get("seed"),
                style=data.get("style") or "",
                photo=data.get("photo"),
                form_token=data["form_token"],
            )
        except (InsufficientCredits, GenerationError) as error:
            _form_errors_from(form, error)
        else:
            return redirect(job)
    return render(request, "generation/create.html", {"form": form, "kind": kind, "switch": switch})


@login_required
@require_http_methods(["GET", "POST"])
@limit_job_creation
def batch_new(request: HttpRequest) -> HttpResponse:
    form = BatchForm(request.POST or None, request.FILES or None, initial={"form_token": uuid.uuid4()})
    switch = SiteSettings.current()
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            batch = batch_create(
                user=request.user,
                model=data["model"],
                prompt=data["prompt"],
                photos=data["photos"],
                form_token=data["form_token"],
            )
        except (InsufficientCredits, GenerationError) as error:
            _form_errors_from(form, error)
        else:
            return redirect(batch)
    return render(request, "generation/create.html", {"form": form, "kind": "batch", "switch": switch})


# --- Jobs --------------------------------------------------------------------------------


def _job_context(job: Job) -> dict:
    outputs = list(job.outputs.all()) if job.status == Job.Status.SUCCEEDED else []
    return {"job": job, "outputs": outputs}


@login_required
@require_GET
def job_detail(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    job = _job_for_user(request, job_id)
    context = _job_context(job) | {"again_token": uuid.uuid4()}
    if job.share_token:
        context["share_url"] = request.build_absolute_uri(f"/s/{job.share_token}/")
    return render(request, "generation/job_detail.html", context)


# What the status fragment shows: open job pages poll it every second, so it loads no more.
STATUS_FIELDS = (
    "id",
    "user_id",
    "status",
    "kind",
    "prompt",
    "cost",
    "source_id",
    "started_at",
    "finished_at",
    "error_message",
)


@login_required
@require_GET
def job_status(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    # The fragment open job pages poll; it stops polling itself once the job is final.
    job = get_object_or_404(user_jobs(user=request.user).only(*STATUS_FIELDS), pk=job_id)
    response = render(request, "generation/job_detail.html#status", _job_context(job))
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
@limit_job_creation
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
            style=job.style,
            source=job.source,
            form_token=token,
        )
    except (InsufficientCredits, GenerationError) as error:
        messages.error(request, str(error))
        return redirect(job)
    return redirect(new_job)


@login_required
@require_POST
def job_stop(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    job = _job_for_user(request, job_id)
    try:
        job_cancel(job=job)
    except GenerationError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Canceled. {job.cost:,} credits are back in your balance.")
    return redirect(job)


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
@require_POST
def job_sharing(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    job = _job_for_user(request, job_id)
    if request.POST.get("share") == "off":
        job_unshare(job=job)
        messages.success(request, "The link no longer works.")
    else:
        try:
            job_share(job=job)
        except GenerationError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, "Anyone with the link can now see this result.")
    return redirect(job)


@login_required
@require_POST
def job_flag(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    job = _job_for_user(request, job_id)
    try:
        job_report(user=request.user, job=job, reason=request.POST.get("reason", ""))
    except GenerationError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Thank you. Our team will look at it; you will see the outcome here.")
    return redirect(job)


# --- Batches -----------------------------------------------------------------------------


@login_required
@require_GET
def batch_list(request: HttpRequest) -> HttpResponse:
    unfinished = Q(jobs__status__in=[Job.Status.QUEUED, Job.Status.RUNNING])
    batches = (
        user_batches(user=request.user)
        .select_related("model")
        .annotate(items=Count("jobs"), open_items=Count("jobs", filter=unfinished))
        .order_by("-created_at")
    )
    ongoing = [batch for batch in batches if batch.open_items]
    completed = [batch for batch in batches if not batch.open_items]
    return render(request, "generation/batch_list.html", {"ongoing": ongoing, "completed": completed})


def _batch_context(request: HttpRequest, batch_id: uuid.UUID) -> dict:
    batch = get_object_or_404(user_batches(user=request.user).select_related("model"), pk=batch_id)
    jobs = list(batch.jobs.select_related("source").prefetch_related("outputs").order_by("created_at"))
    done = all(job.is_final for job in jobs)
    counts = {status: sum(job.status == status for job in jobs) for status in Job.Status.values}
    return {"batch": batch, "jobs": jobs, "done": done, "counts": counts}


@login_required
@require_GET
def batch_detail(request: HttpRequest, batch_id: uuid.UUID) -> HttpResponse:
    return render(request, "generation/batch_detail.html", _batch_context(request, batch_id))


@login_required
@require_GET
def batch_status(request: HttpRequest, batch_id: uuid.UUID) -> HttpResponse:
    response = render(request, "generation/batch_detail.html#items", _batch_context(request, batch_id))
    response["Cache-Control"] = "no-store"
    return response


# --- Gallery and files -------------------------------------------------------------------


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
        JobOutput.objects.select_related("job"), pk=output_id, job__user=request.user, job__deleted_at__isnull=True
    )
    name = output.thumbnail.name if variant == "thumbnail" else output.file.name
    extension = name.rsplit(".", 1)[-1]
    filename = f"dreampixel-{output.job_id.hex[:8]}-{output.index + 1}.{extension}"
    return _serve(name, filename=filename, download=request.GET.get("download") == "1")


@login_required
@require_GET
def upload_file(request: HttpRequest, upload_id: uuid.UUID) -> HttpResponse:
    # A photo whose job (or account) was deleted has no file any more: 404 at once.
    upload = get_object_or_404(Upload.objects.exclude(file=""), pk=upload_id, user=request.user)
    extension = upload.file.name.rsplit(".", 1)[-1]
    return _serve(upload.file.name, filename=f"photo-{upload.id.hex[:8]}.{extension}", download=False)


# --- Shared links (public) ---------------------------------------------------------------


def _shared_job(token: str) -> Job:
    # Only a finished, shared, not deleted job; nothing else of its owner's is reachable here.
    return get_object_or_404(
        Job.objects.select_related("model"),
        share_token=token,
        status=Job.Status.SUCCEEDED,
        deleted_at__isnull=True,
    )


@require_GET
def shared(request: HttpRequest, token: str) -> HttpResponse:
    job = _shared_job(token)
    output = job.outputs.order_by("index").first()
    if output is None:
        raise Http404
    media_url = request.build_absolute_uri(f"/s/{token}/media/")
    poster_url = request.build_absolute_uri(f"/s/{token}/poster/") if output.thumbnail else ""
    return render(
        request,
        "generation/shared.html",
        {
            "job": job,
            "output": output,
            "media_url": media_url,
            "poster_url": poster_url,
            "page_url": request.build_absolute_uri(),
        },
    )


@require_GET
def shared_media(request: HttpRequest, token: str, variant: str = "file") -> HttpResponse:
    job = _shared_job(token)
    output = job.outputs.order_by("index").first()
    if output is None:
        raise Http404
    name = output.thumbnail.name if variant == "poster" else output.file.name
    response = _serve(name, filename=f"dreampixel-{token[:8]}.{name.rsplit('.', 1)[-1]}", download=False)
    # Public, but only briefly: a link its owner revokes (or a job deleted) must not live on in
    # shared caches. SHARED_MEDIA_MAX_AGE seconds; docs/security.md.
    response["Cache-Control"] = f"public, max-age={settings.SHARED_MEDIA_MAX_AGE}"
    return response
