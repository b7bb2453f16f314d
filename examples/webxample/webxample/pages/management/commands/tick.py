"""A scheduler stand-in that must run once at a time (like celery beat): a Tick row per beat."""

import os
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from webxample.pages.models import Tick


class Command(BaseCommand):
    help = "Record a tick every --every seconds until stopped."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--every", type=float, default=0.5)

    def handle(self, *args: object, **options: object) -> None:
        stopping = False

        def stop(_signum: int, _frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while not stopping:
            Tick.objects.create(release=settings.RELEASE_ID, pid=os.getpid())
            time.sleep(float(options["every"]))
