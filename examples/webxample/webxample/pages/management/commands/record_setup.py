"""A once-per-app command (stands for loading initial data or creating the first admin)."""

from django.conf import settings
from django.core.management.base import BaseCommand

from webxample.pages.models import SetupRun


class Command(BaseCommand):
    help = "Record that the one-time setup ran (a deploy must run it once per app, ever)."

    def handle(self, *args: object, **options: object) -> None:
        SetupRun.objects.create(release=settings.RELEASE_ID)
        self.stdout.write(f"setup recorded ({SetupRun.objects.count()} in all)", ending="\n")
