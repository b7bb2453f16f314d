"""The background worker: take queued jobs one at a time, do them, record each run.

A claim is one UPDATE ... WHERE state = 'queued' (only one worker can win it). On
SIGTERM (supervisor's stop, Celery's warm shutdown) the job in hand is finished first,
then the worker exits: a graceful stop loses no job and does none twice.
"""

import os
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from webxample.pages.models import Job, JobRun


class Command(BaseCommand):
    help = "Process queued jobs until stopped (SIGTERM finishes the job in hand first)."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--work-seconds", type=float, default=0.05,
                            help="time each job takes")
        parser.add_argument("--idle-seconds", type=float, default=0.2,
                            help="pause when the queue is empty")

    def handle(self, *args: object, **options: object) -> None:
        stopping = False

        def stop(_signum: int, _frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        me = f"{settings.RELEASE_ID}:{os.getpid()}"
        self.stdout.write(f"worker {me} ready", ending="\n")
        self.stdout.flush()
        while not stopping:
            job = self.claim(me)
            if job is None:
                time.sleep(float(options["idle_seconds"]))
                continue
            # The work itself; a TERM that comes now waits for it.
            time.sleep(float(options["work_seconds"]))
            with transaction.atomic():
                done = Job.objects.filter(pk=job)
                done.update(state=Job.DONE, done_by=me, done_at=timezone.now())
                JobRun.objects.create(job_id=job, release=settings.RELEASE_ID, pid=os.getpid())
        self.stdout.write(f"worker {me} stopped after its job in hand", ending="\n")

    @staticmethod
    def claim(me: str) -> int | None:
        with transaction.atomic():
            queued = Job.objects.filter(state=Job.QUEUED).order_by("pk")
            job = queued.values_list("pk", flat=True).first()
            if job is None:
                return None
            mine = Job.objects.filter(pk=job, state=Job.QUEUED)
            won = mine.update(state=Job.RUNNING, claimed_by=me)
        return job if won else None
