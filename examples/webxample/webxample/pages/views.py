"""Views. The home page does a single read query and no writes; the others exist so the
deploy's tests can count what a real app does across a deploy (jobs, uploads, long requests)."""

import json
import time
import uuid

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from webxample import __version__
from webxample.pages.models import Job, JobRun, SetupRun, Tick


def home(request: HttpRequest) -> HttpResponse:
    """Render the home page with version, release id and the greeting."""
    from webxample.pages.models import Greeting

    greeting = Greeting.objects.order_by("pk").values_list("text", flat=True).first()
    context = {
        "version": __version__,
        "release": settings.RELEASE_ID,
        "greeting": greeting or "",
    }
    return render(request, "webxample/home.html", context)


def health(request: HttpRequest) -> HttpResponse:
    """/health as a plain view (WEBXAMPLE_HEALTH_VIEW): after host validation and the
    HTTPS redirect."""
    from webxample.middleware import health_response

    return health_response()


@csrf_exempt
def jobs(request: HttpRequest) -> HttpResponse:
    """POST queues a job (201); GET counts them (and the runs: a job done twice has two)."""
    if request.method == "POST":
        job = Job.objects.create(payload=request.body.decode("utf-8", "replace")[:200])
        return JsonResponse({"id": job.pk, "release": settings.RELEASE_ID}, status=201)
    states = dict(Job.objects.values_list("state").annotate(n=Count("pk")))
    doubled = JobRun.objects.values("job").annotate(n=Count("pk")).filter(n__gt=1).count()
    return JsonResponse({
        "queued": states.get(Job.QUEUED, 0), "running": states.get(Job.RUNNING, 0),
        "done": states.get(Job.DONE, 0), "runs": JobRun.objects.count(), "doubled": doubled,
        "done_by_release": dict(JobRun.objects.values_list("release").annotate(n=Count("pk"))),
        "setup_runs": SetupRun.objects.count(),
    })


def ticks(request: HttpRequest) -> HttpResponse:
    """The singleton's beats in order: [release, pid, unix time]."""
    rows = Tick.objects.order_by("at", "pk").values_list("release", "pid", "at")
    return JsonResponse({"ticks": [[r, p, a.timestamp()] for r, p, a in rows]})


def slow(request: HttpRequest) -> HttpResponse:
    """Answer after ?s= seconds (a long request, for the request budget across a switch)."""
    seconds = min(float(request.GET.get("s", "1")), 600.0)
    time.sleep(seconds)
    return JsonResponse({"slept": seconds, "release": settings.RELEASE_ID})


@csrf_exempt
def upload(request: HttpRequest) -> HttpResponse:
    """POST stores the body as an uploaded file in MEDIA_ROOT; answers its URL."""
    if request.method != "POST":
        return HttpResponse(status=405)
    name = default_storage.save(f"uploads/{uuid.uuid4().hex}.txt", ContentFile(request.body))
    body = json.dumps({"url": settings.MEDIA_URL + name})
    return HttpResponse(body, status=201, content_type="application/json")
