"""Boot-time behaviour of the web app entry points (WSGI and ASGI)."""

import time


def boot() -> None:
    """Apply the test-only boot knobs to the web app (not to management commands)."""
    from django.conf import settings

    if settings.WEBXAMPLE_FAULT == "import":
        raise RuntimeError("WEBXAMPLE_FAULT=import: simulated crash while importing the web app")
    from webxample.middleware import dead_marker

    if settings.WEBXAMPLE_FAULT == "die" and dead_marker().exists():
        raise RuntimeError("WEBXAMPLE_FAULT=die: this release died and stays dead")
    if settings.WEBXAMPLE_BOOT_DELAY > 0:
        time.sleep(settings.WEBXAMPLE_BOOT_DELAY)
