"""ASGI entry point: ``webxample.asgi:application``."""

import os

from django.core.asgi import get_asgi_application

from webxample.boot import boot

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webxample.settings")

application = get_asgi_application()
boot()
