from __future__ import annotations

import uuid
from functools import partial
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.requests import AuthenticatedHttpRequest
from billing.services import InsufficientCredits, balance_of
from core.keyset import keyset_page
from core.links import absolute_url
from core.ratelimits import limit_job_creation, limit_uploads
from core.storages import file_extension
from generation import services
from generation.downloads import zip_stream
from generation.files import stored_file_response
from generation.forms import FORMS_BY_KIND, BatchForm, available_models
from generation.gallery import gallery_grid
from generation.models import AIModel, Job, JobOutput, Kind, SiteSettings, Upload
from generation.presets import EXAMPLE_PROMPTS, surprise_prompt
from generation.search import gallery_search_page
from generation.selectors import (
    GALLERY_KEYS,
    derived_jobs,
    gallery_outputs,
    job_waiting,
    model_typical_seconds,
    user_batches,
    user_jobs,
    user_output,
)
from generation.services import GenerationError
from generation.uploads import MAX_PIXELS

GALLERY_PAGE_SIZE = 24


def _job_for_user(request: AuthenticatedHttpRequest, job_id: uuid.UUID) -> Job:
    # Another person's job is a 404, never a 403: its existence is not ours to confirm.
    return get_object_or_404(user_jobs(user=request.user).select_related("model", "source", "report"), pk=job_id)


def _serve(name: str, *, filename: str, download: bool) -> HttpResponseBase:
    """A stored file, after the caller checked who may see it."""
    return stored_file_response(name, filename=filename, download=download)


# --- Creating ----------------------------------------------------------------------------


# What one job of each create page is called in "enough for 6 images".
AFFORD_NOUNS = {"image": "image", "edit": "photo edit", "video": "video", "batch": "photo edit", "animate": "animation"}


def _create_context(request: AuthenticatedHttpRequest, form, kind: str) -> dict:
    # A word on what the balance buys: how many of the cheapest job on this page.
    cheapest = min((model.credit_cost for model in form.models), default=0)
    balance = balance_of(request.user)
    afford = balance // cheapest if cheapest else 0
    source_output = _chosen_output(request, form)
    return {
        "form": form,
        "kind": kind,
        "switch": SiteSettings.current(),
        "afford": afford,
        "afford_noun": AFFORD_NOUNS[kind],
        "source_output": source_output,
        # Ideas for an empty prompt; "Surprise me" draws one in the browser, or here without script.
        "examples": EXAMPLE_PROMPTS[kind] if not form["prompt"].value() else [],
        "surprises": list(dict.fromkeys(surprise_prompt(kind) for _ in range(24))),
    }


def _chosen_output(request: AuthenticatedHttpRequest, form) -> JobOutput | None:
    # The person's own result an edit or animation starts from, instead of an uploaded photo.
    if "source_output" not in form.fields:
        return None
    value = form["source_output"].value()
    try:
        output_id = uuid.UUID(str(value)) if value else None
    except ValueError:
        return None
    return user_output(user=request.user, output_id=output_id) if output_id else None


def _prompt_initial(request: AuthenticatedHttpRequest, kind: str) -> dict:
    # An example prompt's link (or "Surprise me" without script) prefills the prompt.
    if request.GET.get("surprise"):
        return {"prompt": surprise_prompt(kind)}
    prompt = request.GET.get("prompt", "").strip()
    return {"prompt": prompt[: services.MAX_PROMPT_LENGTH]} if prompt else {}


def _remix_initial(request: AuthenticatedHttpRequest) -> dict:
    # "Remix": a person's own earlier job prefills the form (another's id is simply ignored),
    # and "?image=" one of their results to start an edit or an animation from.
    initial: dict = {}
    try:
        output_id = uuid.UUID(request.GET.get("image", ""))
    except ValueError:
        output_id = None
    output = user_output(user=request.user, output_id=output_id) if output_id else None
    if output is not None:
        initial |= {"source_output": output.id, "prompt": output.job.prompt}
    try:
        job_id = uuid.UUID(request.GET.get("from", ""))
    except ValueError:
        return initial
    job = user_jobs(user=request.user).filter(pk=job_id).first()
    if job is None:
        return initial
    initial |= {"model": job.model_id, "prompt": job.prompt, "aspect_ratio": job.aspect_ratio, "style": job.style}
    initial |= {"num_outputs": job.num_outputs, "negative_prompt": job.negative_prompt}
    if job.seed_to_repeat is not None:
        initial["seed"] = job.seed_to_repeat
    return initial


def _form_errors_from(form, error: Exception) -> None:
    form.add_error(None, str(error))
    form.short_of_credits = isinstance(error, InsufficientCredits)


@login_required
@require_http_methods(["GET", "POST"])
@limit_uploads
@limit_job_creation
def create(request: AuthenticatedHttpRequest, kind: str = "image") -> HttpResponse:
    form_class = FORMS_BY_KIND[kind]
    initial = {"form_token": uuid.uuid4()} | _prompt_initial(request, kind) | _remix_initial(request)
    form = form_class(request.POST or None, request.FILES or None, initial=initial, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        source_output = None
        if data.get("source_output") and not data.get("photo"):
            source_output = user_output(user=request.user, output_id=data["source_output"])
        try:
            if data.get("source_output") and not data.get("photo") and source_output is None:
                raise GenerationError("That picture is no longer in your gallery; choose a photo instead.")
            job = services.job_create(
                user=request.user,
                model=data["model"],
                prompt=data["prompt"],
                aspect_ratio=data.get("aspect_ratio") or "original",
                seed=data.get("seed"),
                style=data.get("style") or "",
                negative_prompt=data.get("negative_prompt") or "",
                photo=data.get("photo"),
                source_output=source_output,
                num_outputs=data.get("num_outputs") or 1,
                form_token=data["form_token"],
            )
        except (InsufficientCredits, GenerationError) as error:
            _form_errors_from(form, error)
        else:
            return redirect(job)
    return render(request, "generation/create.html", _create_context(request, form, kind))


# --- Starting from a result: upscale, vary -------------------------------------------------


def _output_for_user(request: AuthenticatedHttpRequest, output_id: uuid.UUID) -> JobOutput:
    output = user_output(user=request.user, output_id=output_id)
    if output is None:
        raise Http404
    return output


def _form_token(request: HttpRequest) -> uuid.UUID | None:
    try:
        return uuid.UUID(request.POST.get("form_token", ""))
    except ValueError:
        return None


def _job_from_result(request: AuthenticatedHttpRequest, output: JobOutput, *, kind: str) -> HttpResponse:
    """One click on a result: an upscale (the model posted, 2x or 4x) or a variation (the first
    edit model, with the result's prompt). Charged now at the catalog's price, shown on the button."""
    models = {model.pk: model for model in available_models(kind)}
    try:
        model = models[int(request.POST.get("model", ""))] if kind == Kind.UPSCALE else next(iter(models.values()))
    except (ValueError, KeyError, StopIteration):
        messages.error(request, "That model is not available right now. Choose another.")
        return redirect(output.job)
    try:
        job = services.job_create(
            user=request.user, model=model, prompt=output.job.prompt, aspect_ratio="original",
            source_output=output, form_token=_form_token(request),
        )  # fmt: skip
    except (InsufficientCredits, GenerationError) as error:
        messages.error(request, str(error))
        return redirect(output.job)
    return redirect(job)


@login_required
@require_POST
@limit_job_creation
def result_upscale(request: AuthenticatedHttpRequest, output_id: uuid.UUID) -> HttpResponse:
    return _job_from_result(request, _output_for_user(request, output_id), kind=Kind.UPSCALE)


@login_required
@require_POST
@limit_job_creation
def result_vary(request: AuthenticatedHttpRequest, output_id: uuid.UUID) -> HttpResponse:
    return _job_from_result(request, _output_for_user(request, output_id), kind=Kind.IMAGE_EDIT)


@login_required
@require_http_methods(["GET", "POST"])
@limit_uploads
@limit_job_creation
def batch_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    initial = {"form_token": uuid.uuid4()} | _prompt_initial(request, "batch")
    form = BatchForm(request.POST or None, request.FILES or None, initial=initial, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            batch = services.batch_create(
                user=request.user,
                model=data["model"],
                prompt=data["prompt"],
                photos=data["photos"],
                style=data.get("style") or "",
                negative_prompt=data.get("negative_prompt") or "",
                form_token=data["form_token"],
            )
        except (InsufficientCredits, GenerationError) as error:
            _form_errors_from(form, error)
        else:
            return redirect(batch)
    return render(request, "generation/create.html", _create_context(request, form, "batch"))


# --- Jobs --------------------------------------------------------------------------------


def _poll_after(elapsed: float) -> int:
    # Every second at first, when most images finish; slower for a long video.
    if elapsed < 20:
        return 1
    if elapsed < 90:
        return 3
    return 10


def _elapsed(job: Job) -> float:
    return max(0.0, (timezone.now() - job.created_at).total_seconds())


def _waiting_context(job: Job) -> dict:
    elapsed = _elapsed(job)
    typical = model_typical_seconds(model_id=job.model_id)
    return {
        "poll_after": _poll_after(elapsed),
        "elapsed_seconds": int(elapsed),
        "typical_seconds": typical,
        # Past a minute and a half, "about 3 min" reads better than "about 184 s".
        "typical_minutes": round(typical / 60) if typical and typical >= 90 else None,
    }


def _job_context(request: AuthenticatedHttpRequest, job: Job) -> dict:
    context: dict = {
        "job": job,
        "again_token": uuid.uuid4(),
        "again_cost": job.model.cost_of(job.num_outputs),
        "remix_url": _remix_url(job),
    }
    if job.status == Job.Status.SUCCEEDED:
        outputs = list(job.outputs.all())
        made_from = derived_jobs(outputs=outputs)
        for output in outputs:
            output.made_from_it = made_from.get(output.id, [])
        _result_actions(job, outputs)
        context["outputs"] = outputs
    if job.source_output_id is not None:
        # Where an upscale, an animation or an edit of a result came from, if it is still there.
        context["source_job"] = user_jobs(user=request.user).filter(outputs__id=job.source_output_id).first()
    if not job.is_final:
        context |= _waiting_context(job)
    if job.share_token:
        context["share_url"] = absolute_url(f"/s/{job.share_token}/", request=request)
    return context


def _result_actions(job: Job, outputs: list[JobOutput]) -> None:
    """What each picture of a finished job offers, priced from the catalog: upscale (the first
    model of each factor on offer), vary, remix and animate. Each button posts a form token of
    its own: a double click makes one job, two different clicks make two."""
    if job.is_video:
        return
    catalog = available_models(Kind.UPSCALE, Kind.IMAGE_EDIT, Kind.ANIMATE)  # one query
    upscalers: dict[int, AIModel] = {}
    for model in catalog:
        if model.kind == Kind.UPSCALE and model.upscale_factor:
            upscalers.setdefault(model.upscale_factor, model)
    editors = [model for model in catalog if model.kind == Kind.IMAGE_EDIT]
    animate = any(model.kind == Kind.ANIMATE for model in catalog)
    for output in outputs:
        if output.is_video:
            continue
        factors = sorted(f for f in upscalers if (output.width or 0) * (output.height or 0) * f * f <= MAX_PIXELS)
        output.actions = {
            "upscale": [(upscalers[f], uuid.uuid4()) for f in factors],
            "vary": (editors[0], uuid.uuid4()) if editors else None,
            "animate": animate,
        }


def _remix_url(job: Job) -> str:
    pages = {
        Kind.IMAGE: "create",
        Kind.IMAGE_EDIT: "create_edit",
        Kind.VIDEO: "create_video",
        Kind.ANIMATE: "create_animate",
    }
    page = pages.get(Kind(job.kind))
    if page is None:
        return ""  # an upscale has nothing to remix: upscale its source again instead
    return f"{reverse(page)}?from={job.id}"


@login_required
@require_GET
def job_detail(request: AuthenticatedHttpRequest, job_id: uuid.UUID) -> HttpResponse:
    job = _job_for_user(request, job_id)
    return render(request, "generation/job_detail.html", _job_context(request, job))


@login_required
@require_GET
def job_status(request: AuthenticatedHttpRequest, job_id: uuid.UUID) -> HttpResponse:
    job = job_waiting(user=request.user, job_id=job_id)
    if job is None:
        raise Http404
    if job.is_final:
        # Done: the whole layout is swapped in once, with the result's actions (share,
        # delete, report), and the polling stops because the new markup does not poll.
        job = _job_for_user(request, job_id)
        # A failed or canceled job was refunded: the header's balance follows without a reload.
        refunded = job.status in (Job.Status.FAILED, Job.Status.CANCELED)
        context = _job_context(request, job) | {"balance_changed": refunded}
        response = render(request, "generation/job_detail.html#layout", context)
        response["HX-Retarget"] = "#job-layout"
        response["HX-Reswap"] = "outerHTML"
    elif request.GET.get("status") == job.status and request.GET.get("every") == str(_poll_after(_elapsed(job))):
        # Nothing the page shows has changed (the time so far counts up in the browser):
        # no body, no swap, and the page polls again. Most polls of a waiting job end here.
        response = HttpResponse(status=204)
    else:
        # Rendered without the context processors: the section shows none of what they add
        # except the CSRF token of its cancel form, given here.
        context = {"job": job, "csrf_token": get_token(request)} | _waiting_context(job)
        response = HttpResponse(render_to_string("generation/job_detail.html#status", context))
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
@limit_job_creation
def job_again(request: AuthenticatedHttpRequest, job_id: uuid.UUID) -> HttpResponse:
    job = _job_for_user(request, job_id)
    try:
        token = uuid.UUID(request.POST.get("form_token", ""))
    except ValueError:
        token = None
    # Made from a result still there: start from it again (and say so); else from the job's copy.
    source_output = user_output(user=request.user, output_id=job.source_output_id) if job.source_output_id else None
    try:
        new_job = services.job_create(
            user=request.user,
            model=job.model,
            prompt=job.prompt,
            aspect_ratio=job.aspect_ratio,
            seed=job.seed_to_repeat,  # a new variation, unless the person chose the seed
            style=job.style,
            negative_prompt=job.negative_prompt,
            source=job.source if source_output is None else None,
            source_output=source_output,
            batch=job.batch,
            num_outputs=job.num_outputs,
            form_token=token,
        )
    except (InsufficientCredits, GenerationError) as error:
        # Short of credits: the message carries the way to buy more, as the create form's does.
        tags = "short-of-credits" if isinstance(error, InsufficientCredits) else ""
        messages.error(request, str(error), extra_tags=tags)
        return redirect(job.batch if job.batch is not None and request.POST.get("back") == "batch" else job)
    if job.batch is not None and request.POST.get("back") == "batch":
        return redirect(job.batch)  # one photo of a batch tried again: it joins the same batch
    return redirect(new_job)


@login_required
@require_POST
def job_cancel(request: AuthenticatedHttpRequest, job_id: uuid.UUID) -> HttpResponse:
    job = _job_for_user(request, job_id)
    try:
        services.job_cancel(job=job)
    except GenerationError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request, f"Canceled. {job.cost:,} credits are back in your balance." if job.cost else "Canceled."
        )
    return redirect(job)


@login_required
@require_POST
def job_delete(request: AuthenticatedHttpRequest, job_id: uuid.UUID) -> HttpResponse:
    job = _job_for_user(request, job_id)
    try:
        services.job_delete(job=job)
    except GenerationError as error:
        messages.error(request, str(error))
        return redirect(job)
    messages.success(request, "The job and its files were deleted.")
    return redirect("gallery")


@login_required
@require_POST
def job_share(request: AuthenticatedHttpRequest, job_id: uuid.UUID) -> HttpResponse:
    job = _job_for_user(request, job_id)
    if request.POST.get("share") == "off":
        services.job_unshare(job=job)
        messages.success(request, "The link no longer works.")
    else:
        try:
            services.job_share(job=job)
        except GenerationError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, "Anyone with the link can now see this result.")
    return redirect(job)


@login_required
@require_POST
def job_report(request: AuthenticatedHttpRequest, job_id: uuid.UUID) -> HttpResponse:
    job = _job_for_user(request, job_id)
    try:
        services.job_report(user=request.user, job=job, reason=request.POST.get("reason", ""))
    except GenerationError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Thank you. Our team will look at it; you will see the outcome here.")
    return redirect(job)


# --- Batches -----------------------------------------------------------------------------


@login_required
@require_GET
def batch_list(request: AuthenticatedHttpRequest) -> HttpResponse:
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


def _batch_context(request: AuthenticatedHttpRequest, batch_id: uuid.UUID) -> dict:
    batch = get_object_or_404(user_batches(user=request.user).select_related("model"), pk=batch_id)
    jobs = list(batch.jobs.select_related("source").prefetch_related("outputs").order_by("created_at"))
    done = all(job.is_final for job in jobs)
    for job in jobs:
        job.retry_token = uuid.uuid4()  # one "Try this photo again" form each
    counts = {status: sum(job.status == status for job in jobs) for status in Job.Status.values}
    return {"batch": batch, "jobs": jobs, "done": done, "counts": counts}


@login_required
@require_GET
def batch_detail(request: AuthenticatedHttpRequest, batch_id: uuid.UUID) -> HttpResponse:
    return render(request, "generation/batch_detail.html", _batch_context(request, batch_id))


@login_required
@require_GET
def batch_download(request: AuthenticatedHttpRequest, batch_id: uuid.UUID) -> StreamingHttpResponse:
    batch = get_object_or_404(user_batches(user=request.user), pk=batch_id)
    outputs = JobOutput.objects.filter(
        job__batch=batch, job__deleted_at__isnull=True, job__status=Job.Status.SUCCEEDED
    ).order_by("job__created_at", "index")
    files = [
        (
            f"dreampixel-{number:02d}.{output.extension}",
            partial(default_storage.open, output.file.name),
        )
        for number, output in enumerate(outputs, start=1)
    ]
    if not files:
        raise Http404("Nothing in this batch has finished yet.")
    response = StreamingHttpResponse(zip_stream(files), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="dreampixel-batch-{batch.id.hex[:8]}.zip"'
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_GET
def batch_status(request: AuthenticatedHttpRequest, batch_id: uuid.UUID) -> HttpResponse:
    # Each poll brings the header's balance too: a photo that failed was refunded.
    context = _batch_context(request, batch_id) | {"balance_changed": True}
    response = render(request, "generation/batch_detail.html#items", context)
    response["Cache-Control"] = "no-store"
    return response


# --- Gallery and files -------------------------------------------------------------------


# What one bulk action may take: a few pages of the gallery.
MAX_SELECTED = 100


def _gallery_filters(request: AuthenticatedHttpRequest) -> dict:
    kind = request.GET.get("kind") or None
    if kind not in (None, *Kind.values):
        kind = None
    search = request.GET.get("q", "").strip()[:200]
    return {"kind": kind, "favourites": request.GET.get("fav") == "1", "search": search}


@login_required
@require_GET
def gallery(request: AuthenticatedHttpRequest) -> HttpResponse:
    filters = _gallery_filters(request)
    before, after = request.GET.get("before"), request.GET.get("after")
    # The filters a page link keeps, in the query string of "Older" and "Newer".
    keep = "".join(
        f"&{name}={value}"
        for name, value in (("kind", filters["kind"]), ("fav", "1" if filters["favourites"] else ""))
        if value
    ) + (f"&{urlencode({'q': filters['search']})}" if filters["search"] else "")

    def grid() -> str:
        if filters["search"]:
            page = gallery_search_page(user_id=request.user.pk, before=before, size=GALLERY_PAGE_SIZE, **filters)
        else:
            page = keyset_page(
                gallery_outputs(user=request.user, kind=filters["kind"], favourites=filters["favourites"]),
                keys=GALLERY_KEYS, size=GALLERY_PAGE_SIZE,
                before=before, after=after,
            )  # fmt: skip
        # No request: the grid shows nothing of it (generation/gallery.py keeps it for every browser).
        context = {"page": page, "keep": keep, "deep": bool(before or after), **filters}
        return render_to_string("generation/gallery.html#grid", context)

    # Only the plain newest page of a kind is kept; searches and favourites are read each time.
    fresh = before or after or filters["search"] or filters["favourites"]
    html = grid() if fresh else gallery_grid(user_id=request.user.pk, kind=filters["kind"], render=grid)
    return render(
        request,
        "generation/gallery.html",
        {"grid": html, "kinds": Kind.choices, "max_selected": MAX_SELECTED, **filters},
    )


def _selected_ids(request: AuthenticatedHttpRequest, name: str) -> list[uuid.UUID]:
    ids = []
    for value in request.POST.getlist(name)[:MAX_SELECTED]:
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            continue
    return ids


def _back_to_gallery(request: AuthenticatedHttpRequest) -> HttpResponse:
    # Back where the person was: the same filters and page, never another site.
    query = request.POST.get("back", "")
    return redirect(f"{reverse('gallery')}?{query}" if query and "//" not in query else reverse("gallery"))


@login_required
@require_POST
def gallery_download(request: AuthenticatedHttpRequest) -> HttpResponseBase:
    outputs = (
        JobOutput.objects.filter(
            pk__in=_selected_ids(request, "output"),
            job__user=request.user,
            job__deleted_at__isnull=True,
            job__status=Job.Status.SUCCEEDED,
        )
        .select_related("job")
        .order_by("-job__created_at", "index")
    )
    files = [
        (
            f"dreampixel-{number:02d}-{output.job_id.hex[:8]}.{output.extension}",
            partial(default_storage.open, output.file.name),
        )
        for number, output in enumerate(outputs, start=1)
    ]
    if not files:
        messages.error(request, "Choose the pictures to download first.")
        return _back_to_gallery(request)
    response = StreamingHttpResponse(zip_stream(files), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="dreampixel-{len(files)}-files.zip"'
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_POST
def gallery_delete(request: AuthenticatedHttpRequest) -> HttpResponse:
    job_ids = JobOutput.objects.filter(pk__in=_selected_ids(request, "output"), job__user=request.user).values_list(
        "job_id", flat=True
    )
    deleted, kept = services.jobs_delete(user=request.user, job_ids=list(job_ids))
    if not deleted and not kept:
        messages.error(request, "Choose the pictures to delete first.")
    elif deleted:
        messages.success(
            request, f"{deleted:,} job{pluralize(deleted)} and {pluralize(deleted, 'its,their')} files were deleted."
        )
    if kept:
        messages.error(request, f"{kept:,} job{pluralize(kept)} still running {pluralize(kept, 'was,were')} kept.")
    return _back_to_gallery(request)


@login_required
@require_POST
def job_favourite(request: AuthenticatedHttpRequest, job_id: uuid.UUID) -> HttpResponse:
    job = _job_for_user(request, job_id)
    services.job_favourite(job=job, favourite=request.POST.get("favourite") != "off")
    if request.htmx:
        url = reverse("job_favourite", args=[job.id])
        return render(request, "generation/_favourite.html", {"url": url, "favourite": job.favourite})
    if request.POST.get("back") is not None:
        return _back_to_gallery(request)
    return redirect(job)


@login_required
@require_GET
def output_file(request: AuthenticatedHttpRequest, output_id: uuid.UUID, variant: str = "file") -> HttpResponseBase:
    output = get_object_or_404(
        JobOutput.objects.select_related("job"), pk=output_id, job__user=request.user, job__deleted_at__isnull=True
    )
    name = output.thumbnail.name if variant == "thumbnail" else output.file.name
    filename = f"dreampixel-{output.job_id.hex[:8]}-{output.index + 1}.{file_extension(name)}"
    return _serve(name, filename=filename, download=request.GET.get("download") == "1")


@login_required
@require_GET
def upload_file(request: AuthenticatedHttpRequest, upload_id: uuid.UUID) -> HttpResponseBase:
    # A photo whose job (or account) was deleted has no file any more: 404 at once. One not yet
    # cleaned by its job's worker still carries its metadata: served to nobody (uploads.py).
    upload = get_object_or_404(
        Upload.objects.exclude(file="").filter(needs_cleaning=False), pk=upload_id, user=request.user
    )
    filename = f"photo-{upload.id.hex[:8]}.{file_extension(upload.file.name)}"
    return _serve(upload.file.name, filename=filename, download=False)


# --- Shared links (public) ---------------------------------------------------------------


def _shared_job(token: str) -> Job:
    # Only a finished, shared, not deleted job; nothing else of its owner's is reachable here.
    return get_object_or_404(
        Job.objects.select_related("model", "source"),
        share_token=token,
        status=Job.Status.SUCCEEDED,
        deleted_at__isnull=True,
    )


@require_GET
def shared(request: HttpRequest, token: str) -> HttpResponse:
    job = _shared_job(token)
    outputs = list(job.outputs.order_by("index"))
    if not outputs:
        raise Http404
    output = outputs[0]
    media_url = absolute_url(f"/s/{token}/media/", request=request)
    poster_url = absolute_url(f"/s/{token}/poster/", request=request) if output.thumbnail else ""
    # Every result of the job, each at /s/<token>/media/?i=<index>; the first is the preview's.
    for each in outputs:
        each.shared_url = f"{media_url}?i={each.index}" if each.index else media_url
    return render(
        request,
        "generation/shared.html",
        {
            "job": job,
            "output": output,
            "outputs": outputs,
            "media_url": media_url,
            "poster_url": poster_url,
            "page_url": absolute_url(request.get_full_path(), request=request),
        },
    )


@require_GET
def shared_media(request: HttpRequest, token: str, variant: str = "file") -> HttpResponseBase:
    job = _shared_job(token)
    try:
        index = int(request.GET.get("i", "0"))
    except ValueError:
        raise Http404 from None
    output = job.outputs.filter(index=index).first()
    if output is None:
        raise Http404
    if variant == "before":
        # An edit's "before": the owner shares it together with the result.
        if job.source is None or job.source.needs_cleaning:
            raise Http404
        name = job.source.file.name
    else:
        name = output.thumbnail.name if variant == "poster" else output.file.name
    response = _serve(name, filename=f"dreampixel-{token[:8]}.{file_extension(name)}", download=False)
    # Public, but only briefly: a link its owner revokes (or a job deleted) must not live on in
    # shared caches. SHARED_MEDIA_MAX_AGE seconds; docs/security.md.
    response["Cache-Control"] = f"public, max-age={settings.SHARED_MEDIA_MAX_AGE}"
    return response
