"""Django settings for webxample.

12-factor style: everything deployment-specific comes from the environment, and a
missing required variable stops the process at import time with a message naming it.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from webxample import __version__


def env_required(name: str) -> str:
    """Return the value of a required environment variable or fail fast."""
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(f"Required environment variable {name} is not set")
    return value


def env_bool(name: str, default: bool = False) -> bool:
    """Parse a boolean environment variable (1/true/yes/on, case-insensitive)."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"Environment variable {name} must be a boolean, got {value!r}")


def env_float(name: str, default: float = 0.0) -> float:
    """Parse a float environment variable."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"Environment variable {name} must be a number, got {value!r}"
        ) from exc


# --- Fault injection (test-only knobs, see README) --------------------------------
FAULTS = {"", "health", "import", "proxied", "public", "die"}
WEBXAMPLE_FAULT = os.environ.get("WEBXAMPLE_FAULT", "").strip().lower()
if WEBXAMPLE_FAULT not in FAULTS:
    raise ImproperlyConfigured(
        f"WEBXAMPLE_FAULT must be one of {sorted(FAULTS)}, got {WEBXAMPLE_FAULT!r}"
    )

# WEBXAMPLE_FAULT=die: seconds after the first public request before the release dies.
WEBXAMPLE_DIE_AFTER = env_float("WEBXAMPLE_DIE_AFTER", 5.0)

# Simulated slow boot of the web app (e.g. warming caches, loading a model);
# applied in webxample.wsgi / webxample.asgi, so management commands stay fast.
WEBXAMPLE_BOOT_DELAY = env_float("WEBXAMPLE_BOOT_DELAY", 0.0)

# --- Core ------------------------------------------------------------------------
BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = env_required("WEBXAMPLE_SECRET_KEY")
ALLOWED_HOSTS = [h.strip() for h in env_required("WEBXAMPLE_ALLOWED_HOSTS").split(",") if h.strip()]
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("Required environment variable WEBXAMPLE_ALLOWED_HOSTS is not set")
DEBUG = env_bool("WEBXAMPLE_DEBUG", False)

# Answer /health with a plain view, after host validation and the HTTPS redirect, as most
# real projects do (by default a first middleware answers it whatever the Host header).
WEBXAMPLE_HEALTH_VIEW = env_bool("WEBXAMPLE_HEALTH_VIEW", False)

# Set by the deployer; shown on the home page and in /health.
RELEASE_ID = os.environ.get("RELEASE_ID", "")
VERSION = __version__

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.staticfiles",
    "webxample.pages",
]

MIDDLEWARE = [
    # Must stay first: answers /health before host validation (never calls get_host()).
    "webxample.middleware.HealthCheckMiddleware",
    "webxample.middleware.FaultInjectionMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "webxample.urls"
WSGI_APPLICATION = "webxample.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": []},
    },
]

# --- Database --------------------------------------------------------------------
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": env_required("WEBXAMPLE_DATABASE_PATH"),
        "OPTIONS": {
            # Wait for locks (e.g. a migration running during a rolling deploy)
            # instead of failing immediately with "database is locked".
            "timeout": 20,
            # WAL lets readers keep working while a writer (migrate) holds the lock.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
        },
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Static files and uploads (both served by nginx) ---------------------------------
STATIC_URL = "/static/"
# A relative path is taken from the working directory (the release, when deployed).
STATIC_ROOT = str(Path(env_required("WEBXAMPLE_STATIC_ROOT")).resolve())
MEDIA_URL = "/media/"
MEDIA_ROOT = str(Path(os.environ.get("WEBXAMPLE_MEDIA_ROOT", "media")).resolve())

# --- i18n ------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- Behind nginx ----------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Production settings often force HTTPS: plain-HTTP requests get a 301 to https://.
SECURE_SSL_REDIRECT = env_bool("WEBXAMPLE_SSL_REDIRECT", False)
X_FRAME_OPTIONS = "DENY"

# --- Logging: everything to stdout (journald / gunicorn capture it) ----------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "plain",
        },
    },
    "root": {"handlers": ["stdout"], "level": "INFO"},
    "loggers": {
        "django": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
    },
}
