"""Middleware: health check endpoint and test-only fault injection."""

import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, HttpResponseServerError, JsonResponse
from django.test import Client

from webxample import __version__

logger = logging.getLogger(__name__)

HEALTH_PATHS = frozenset({"/health", "/health/"})

GetResponse = Callable[[HttpRequest], HttpResponse]


def internal_host() -> str:
    """Pick a Host header that ALLOWED_HOSTS accepts, for the internal home-page request."""
    hosts = list(settings.ALLOWED_HOSTS)
    for host in hosts:
        if host != "*" and not host.startswith("."):
            return host
    for host in hosts:
        if host.startswith(".") and len(host) > 1:
            return host[1:]  # ".example.com" also matches "example.com"
    return "localhost"  # "*" (or DEBUG's implicit localhost)


def check_database() -> bool:
    """The database answers a trivial query."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")
        row = cursor.fetchone()
    return row is not None and row[0] == 1


def check_migrations() -> bool:
    """There are no unapplied migrations."""
    connection = connections[DEFAULT_DB_ALIAS]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return not plan


def check_home() -> bool:
    """The home page renders (full middleware/URL/view/template/DB path)."""
    client = Client(raise_request_exception=False)
    secure = settings.SECURE_SSL_REDIRECT
    response = client.get("/", HTTP_HOST=internal_host(), secure=secure)
    return response.status_code == 200


CHECKS: dict[str, Callable[[], bool]] = {
    "database": check_database,
    "migrations": check_migrations,
    "home": check_home,
}


def run_checks() -> dict[str, bool]:
    """Run every check; an exception counts as a failure (and is logged)."""
    results: dict[str, bool] = {}
    for name, check in CHECKS.items():
        try:
            results[name] = bool(check())
        except Exception:
            logger.exception("health check %r raised", name)
            results[name] = False
    return results


def health_response() -> HttpResponse:
    """The health answer: 200 when every check passes, else 503 (WEBXAMPLE_FAULT=health: 500)."""
    checks = run_checks()
    healthy = all(checks.values())
    status = 200 if healthy else 503
    if getattr(settings, "WEBXAMPLE_FAULT", "") == "health":
        healthy, status = False, 500
    payload = {
        "status": "ok" if healthy else "fail",
        "release": settings.RELEASE_ID,
        "version": __version__,
        "checks": checks,
    }
    response = JsonResponse(payload, status=status)
    response["Cache-Control"] = "no-store"
    return response


class HealthCheckMiddleware:
    """Answer /health before anything else.

    Must be FIRST in MIDDLEWARE: load balancers, nginx and socket probes send Host
    headers such as an IP or "localhost" that are not in ALLOWED_HOSTS, and this
    middleware never calls request.get_host(), so host validation cannot turn the
    health check into a 400.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info not in HEALTH_PATHS or settings.WEBXAMPLE_HEALTH_VIEW:
            return self.get_response(request)
        return health_response()


class FaultInjectionMiddleware:
    """Test-only: WEBXAMPLE_FAULT=proxied|public fails requests that came through a proxy;
    WEBXAMPLE_FAULT=die kills the release WEBXAMPLE_DIE_AFTER seconds after the first
    request the public site sent it, for good (see webxample.boot)."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.timer: threading.Timer | None = None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        fault = getattr(settings, "WEBXAMPLE_FAULT", "")
        proxied = "HTTP_X_FORWARDED_FOR" in request.META
        preview = "HTTP_X_ZERODOWNTIME_PREVIEW" in request.META
        public = proxied and not preview
        dying = fault == "die" and public and request.path_info not in HEALTH_PATHS
        if dying and self.timer is None:
            self.timer = threading.Timer(settings.WEBXAMPLE_DIE_AFTER, die)
            self.timer.daemon = True
            self.timer.start()
        if fault == "proxied" and proxied:
            return HttpResponseServerError(
                "WEBXAMPLE_FAULT=proxied: simulated failure behind the proxy\n",
                content_type="text/plain",
            )
        if fault == "public" and proxied and not preview:
            return HttpResponseServerError(
                "WEBXAMPLE_FAULT=public: simulated failure on the public site only\n",
                content_type="text/plain",
            )
        return self.get_response(request)


def dead_marker() -> Path:
    return Path(os.environ.get("RELEASE_PATH", "/tmp")) / ".webxample-dead"


def die() -> None:
    """Test-only (WEBXAMPLE_FAULT=die): mark the release dead (it then fails at boot, see
    webxample.boot) and kill its gunicorn, workers and all."""
    logger.error("WEBXAMPLE_FAULT=die: this release dies now")
    dead_marker().touch()
    os.kill(os.getppid(), signal.SIGKILL)
    os._exit(1)
