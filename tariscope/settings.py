"""All settings, read from the environment (STYLE rule 6). Defaults are in docs/config.md.

Without DATABASE_URL the system runs on a SQLite file in the data directory; without
CELERY_BROKER_URL tasks run in-process. Production (DEBUG off) refuses to start without
SECRET_KEY.
"""
import secrets
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)

DATA_DIR = Path(env.str("TARISCOPE_DATA_DIR", default=str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)
ARCHIVE_DIR = DATA_DIR / "archive"
LOG_DIR = DATA_DIR / "logs"
SPOOL_DIR = DATA_DIR / "spool"
SCRIPTS_DIR = Path(env.str("TARISCOPE_SCRIPTS_DIR", default=str(DATA_DIR / "scripts")))


def _secret_key() -> str:
    key = env.str("SECRET_KEY", default="")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment (a long random string), "
            "or set DEBUG=true to let a development key be generated in TARISCOPE_DATA_DIR."
        )
    # A development key survives restarts so that sessions stay valid.
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    # Swagger UI and Redoc as static files, so that /api/docs/ works offline.
    "drf_spectacular_sidecar",
    "django_filters",
    "django_tables2",
    "django_htmx",
    "tariffs",
    "billing",
    "observers",
    "restrictions",
    "scripts",
    "reports",
    "api",
    # The site as a whole: its configuration file, the demo, `start` (docs/architecture.md).
    "tariscope",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # R11: the page's language from the user's choice (a cookie), else the browser's.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "tariscope.middleware.RefuseNulInQueryMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "tariscope.urls"
WSGI_APPLICATION = "tariscope.wsgi.application"
ASGI_APPLICATION = "tariscope.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url(
        "DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'tariscope.sqlite3'}"
    )
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Collectors and the web server write at the same time: wait for the lock, not fail.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE",
         "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="en-us")
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
# R11: the UI's languages (docs/languages.md); the user picks one (the switcher in the
# page's header, remembered in a cookie), else the browser's preference decides.
LANGUAGES = [("en", "English"), ("uk", "Українська"), ("ru", "Русский")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# --- Celery -----------------------------------------------------------------------------
_BROKER = env.str("CELERY_BROKER_URL", default="")
# No broker: tasks run in-process, the embedded default (R12.1). Celery still builds a
# broker connection for eager tasks; an in-memory one needs no server.
CELERY_TASK_ALWAYS_EAGER = not _BROKER
CELERY_BROKER_URL = _BROKER or "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task whose worker died (kill -9, the machine lost) stays unacknowledged in Redis: it is
# given to another worker once it has been so for CELERY_VISIBILITY_TIMEOUT seconds, and the
# workers look for such tasks every CELERY_RESTORE_INTERVAL seconds (kombu's default, an
# hour and about 100 s, would leave its calls waiting for an hour). So a killed worker's
# work is done again within their sum, 190 s by default. The timeout must exceed the
# longest task: a task still running then is given to a second worker as well (the
# processing task is idempotent; a tariff import waits for the first: tariffs/tasks.py).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=180),
    "unacked_restore_interval": env.int("CELERY_RESTORE_INTERVAL", default=10),
    "unacked_restore_throttle": 1,  # every sweep looks (kombu's default: every tenth)
}
# Celery's Django fix-up closes the database connection after every task unless this is
# set: a new connection per delivery cost a worker a fifth of its time on small batches.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=100)
CELERY_TASK_SERIALIZER = "json"
# Results (progress of long jobs, R11.3) go to the broker's Redis unless set otherwise.
CELERY_RESULT_BACKEND = env.str(
    "CELERY_RESULT_BACKEND",
    default=_BROKER if _BROKER.startswith(("redis://", "rediss://")) else "",
) or None
CELERY_RESULT_EXPIRES = 24 * 3600
# Periodic work for `celery beat` (the docker-compose `beat` service).
CELERY_BEAT_SCHEDULE = {
    # R7.1: subscription fees of the month, on its first day.
    "charge-recurring": {"task": "billing.charge_recurring",
                         "schedule": crontab(minute=5, hour=0, day_of_month=1)},
    # R5.2: uploads of import wizards left unfinished (TARIFF_IMPORT_UPLOAD_MAX_AGE_HOURS).
    "tariff-import-cleanup": {"task": "tariffs.import_cleanup", "schedule": crontab(minute=35)},
    # R8.2: closures made by limits reopen at 00:00 on the 1st in their node's zone; each
    # run reopens what is due, so a run missed while the system was down catches up.
    "limits-reopen-due": {"task": "restrictions.limits_reopen_due", "schedule": crontab()},
    # R8.1: every limit checked against the month's usage (behind the check after each
    # stored batch), and the PBX changes that wait tried again (the pbx_control service
    # does both more often).
    "limits-enforce": {"task": "restrictions.limits_enforce", "schedule": crontab(minute=17)},
    "pbx-changes-run": {"task": "restrictions.pbx_changes_run", "schedule": crontab()},
    # R8.10: extensions synced into subscribers, each PBX at its connector's sync_minutes;
    # R8.8, R8.9: queue calls and legs of transferred calls imported from the PBXs.
    "pbx-sync-due": {"task": "restrictions.pbx_sync_due", "schedule": crontab(minute="*/5")},
    "pbx-data-due": {"task": "restrictions.pbx_data_due", "schedule": crontab(minute="*/15")},
}
CELERY_TIMEZONE = TIME_ZONE

# --- Reports (R11.3, docs/reports.md) -------------------------------------------------------
# A report over more days than this runs as a task behind a progress page.
REPORTS_SYNC_DAYS = env.int("REPORTS_SYNC_DAYS", default=92)
# The "short calls" report: answered calls up to this many seconds.
REPORTS_SHORT_CALL_SECONDS = env.int("REPORTS_SHORT_CALL_SECONDS", default=10)

# --- Cache ------------------------------------------------------------------------------
# Shared by every web worker when set (the API's login throttle counts across workers);
# without it each process keeps its own. Never the broker's Redis database: clearing the
# cache would empty the task queues.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}
# Failed web logins (/accounts/login/), per account and per client address (api/logins.py).
LOGIN_FAILURES_RATE = env.str("LOGIN_FAILURES_RATE", default="10/min")

# --- Mail (scripts and alerts, R9.3) ----------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://" if DEBUG else "smtp://localhost:25")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="tariscope@localhost")
# The address that scripts mail when they give no recipient (R9.3).
TARISCOPE_ALERT_EMAIL = env.str("TARISCOPE_ALERT_EMAIL", default="")
# The memory limit of a script's process (R9.1, docs/scripts.md), and how long the event
# log is kept.
TARISCOPE_SCRIPT_MEMORY_MB = env.int("TARISCOPE_SCRIPT_MEMORY_MB", default=256)
TARISCOPE_EVENT_LOG_DAYS = env.int("TARISCOPE_EVENT_LOG_DAYS", default=30)
# Scripts yield to collection: the dispatcher and the scripts' processes run at this nice
# value (0-19; 0 keeps the server's priority).
TARISCOPE_SCRIPT_NICE = env.int("TARISCOPE_SCRIPT_NICE", default=10)
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Health ----------------------------------------------------------------------------
# A monitor sending `Authorization: Bearer <HEALTH_TOKEN>` to /health gets the details
# (observers and their counters) that otherwise only a logged-in user sees; empty: none.
HEALTH_TOKEN = env.str("HEALTH_TOKEN", default="")

# --- REST framework ---------------------------------------------------------------------
BEHIND_PROXY = env.bool("BEHIND_PROXY", default=False)
# How many proxies stand in front (each appends to X-Forwarded-For): the client's address
# is the one the last of them saw. Without BEHIND_PROXY the header is never trusted.
PROXY_COUNT = env.int("PROXY_COUNT", default=1)

REST_FRAMEWORK = {
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Failed logins to /api/auth, per account and per client address (api/logins.py).
    "DEFAULT_THROTTLE_RATES": {"api_auth": env.str("API_AUTH_FAILURES_RATE", default="10/min")},
    # DRF's throttles trust X-Forwarded-For only behind the configured proxies.
    "NUM_PROXIES": PROXY_COUNT if BEHIND_PROXY else 0,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# R10: the OpenAPI schema (/api/schema/) and its documentation page (/api/docs/). Both are
# public: they describe what docs/api.md already publishes and expose no data; every
# method they describe still requires its token.
SPECTACULAR_SETTINGS = {
    "TITLE": "Tariscope REST API",
    "DESCRIPTION": "R10: the original product's API (accounts, subscribers) and read methods "
                   "beyond it. Get a token with POST /api/auth and send it as "
                   "`Authorization: Bearer <token>`. Parameters come in the query string, "
                   "as form fields or as a JSON object; names match case-insensitively. "
                   "Every error answers {\"message\": \"…\"}.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": "/api/",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The routes accept an optional trailing slash (R10.8); the schema names each once.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "api.schema.strip_optional_slash"],
}


def _api_jwt_key() -> str:
    """R10.2: the key that signs the REST API's tokens, never SECRET_KEY itself. Without
    it the API answers 503 (production), or uses a key derived from SECRET_KEY (DEBUG)."""
    key = env.str("API_JWT_KEY", default="")
    if key or not DEBUG:
        return key
    import hashlib

    return hashlib.sha256(f"tariscope-api-jwt:{SECRET_KEY}".encode()).hexdigest()


API_JWT_KEY = _api_jwt_key()

# --- Security in production -------------------------------------------------------------
SECURE_HTTPS = env.bool("SECURE_HTTPS", default=not DEBUG)
SESSION_COOKIE_SECURE = SECURE_HTTPS
CSRF_COOKIE_SECURE = SECURE_HTTPS
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=SECURE_HTTPS)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if SECURE_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_PROXY else None
# /health is polled by load balancers over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^health$"]
X_FRAME_OPTIONS = "DENY"
# Submitting a domain to the browsers' HSTS preload list is the site owner's decision
# (SECURE_HSTS_PRELOAD=true), not a default we can make for every install.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

# --- Logging ----------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # In-process tasks would log every task twice over the observers' own lines.
    "loggers": {"celery.app.trace": {"level": "WARNING" if CELERY_TASK_ALWAYS_EAGER else LOG_LEVEL}},
}

# --- Tariscope --------------------------------------------------------------------------
# Largest CDR file a collector reads, in bytes.
TARISCOPE_MAX_FILE_BYTES = env.int("TARISCOPE_MAX_FILE_BYTES", default=512 * 1024 * 1024)
# Calls are written in batches of this many rows.
TARISCOPE_BATCH_SIZE = env.int("TARISCOPE_BATCH_SIZE", default=2000)
# A delivery larger than this (bytes) of a line-by-line format is processed as several
# tasks, which several Celery workers take side by side.
TARISCOPE_TASK_BYTES = env.int("TARISCOPE_TASK_BYTES", default=4 * 1024 * 1024)
# R2.6: the largest batch a remote observer may send in one request (POST
# /api/observer/ingest reads it past Django's DATA_UPLOAD_MAX_MEMORY_SIZE, for that endpoint
# alone). Remote observers send files of line-by-line formats in 1 MiB pieces anyway.
TARISCOPE_REMOTE_BATCH_MAX_BYTES = env.int("TARISCOPE_REMOTE_BATCH_MAX_BYTES",
                                           default=64 * 1024 * 1024)
# R5.2: an import wizard's upload (or result) untouched this long is removed (import_cleanup).
try:
    TARIFF_IMPORT_UPLOAD_MAX_AGE_HOURS = env.int("TARIFF_IMPORT_UPLOAD_MAX_AGE_HOURS", default=24)
except ValueError:
    TARIFF_IMPORT_UPLOAD_MAX_AGE_HOURS = 0
if TARIFF_IMPORT_UPLOAD_MAX_AGE_HOURS < 1:
    raise ImproperlyConfigured(
        "TARIFF_IMPORT_UPLOAD_MAX_AGE_HOURS must be a whole number of hours, 1 or more; it is "
        f"{env.str('TARIFF_IMPORT_UPLOAD_MAX_AGE_HOURS')!r}")
