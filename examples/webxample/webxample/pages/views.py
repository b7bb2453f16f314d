"""Views. Kept cheap: the home page does a single read query and no writes."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from webxample import __version__
from webxample.pages.models import Greeting


def home(request: HttpRequest) -> HttpResponse:
    """Render the home page with version, release id and the greeting."""
    greeting = Greeting.objects.order_by("pk").values_list("text", flat=True).first()
    context = {
        "version": __version__,
        "release": settings.RELEASE_ID,
        "greeting": greeting or "",
    }
    return render(request, "webxample/home.html", context)
