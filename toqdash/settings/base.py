"""toqdash settings: one env-driven module (house style §8, no production.py).

Every variable is listed in `.env.example`. Values that differ in production are environment
variables; `toqdash.settings.test` only makes the test run faster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import environ
import plotly
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
# A local .env is optional (never committed); the real environment wins.
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# --- Core -------------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
# The demo and tests run without a SECRET_KEY in the environment; production must set one
# (`check --deploy` flags the insecure default).
SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-toqdash-local-only")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "django_filters",
    "jobs",
    "awslogs",
    "diagnosis",
    "reprocess",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "toqdash.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "toqdash.urls"
WSGI_APPLICATION = "toqdash.wsgi.application"

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- Databases --------------------------------------------------------------------------------
# `default`: the dashboard's own database. SQLite file in the repo for the one-command demo;
# PostgreSQL (psycopg 3) in tests and production.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'toqdash.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", 0)

# `toq`: TOQ Server's MySQL, read-only. Reached only through raw SELECTs in jobs.toq_source;
# jobs.routers.ToqReadOnlyRouter refuses migrations and writes on it, and the connection itself
# rejects any statement that is not a read (jobs.toq_source.install_read_only_guard).
TOQ_DATABASE_URL = env.str("TOQ_DATABASE_URL", default="")
if TOQ_DATABASE_URL:
    _toq = env.db_url_config(TOQ_DATABASE_URL)
    if _toq["ENGINE"] == "django.db.backends.mysql":
        _toq.setdefault("OPTIONS", {})
        # UTC session so TIMESTAMP columns come back in UTC (the session is also made read-only,
        # see jobs.toq_source); short connect timeout for a clear "MySQL down" error.
        _toq["OPTIONS"].update(
            {
                "init_command": "SET time_zone='+00:00'",
                "connect_timeout": env.int("TOQ_DATABASE_CONNECT_TIMEOUT", default=5),
                "charset": "utf8mb4",
                # Each read sees the latest committed rows (the sync is convergent; a long
                # REPEATABLE READ snapshot would only hide changes).
                "isolation_level": "read committed",
            }
        )
    elif _toq["ENGINE"] == "django.db.backends.sqlite3":
        # The embedded demo source: opened read-only at the SQLite level too.
        TOQ_SQLITE_PATH = _toq["NAME"]
        _toq["NAME"] = f"file:{TOQ_SQLITE_PATH}?mode=ro"
        _toq.setdefault("OPTIONS", {})["uri"] = True
    _toq["TEST"] = {"MIRROR": None, "MIGRATE": False}
    DATABASES["toq"] = _toq

DATABASE_ROUTERS = ["jobs.routers.ToqReadOnlyRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth ---------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# --- i18n / time --------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("pt-br", _("Brazilian Portuguese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"  # storage; users see DISPLAY_TIME_ZONE
DISPLAY_TIME_ZONE = env.str("DISPLAY_TIME_ZONE", default="America/Sao_Paulo")

# --- Static files -------------------------------------------------------------------------------
STATIC_URL = "static/"
# plotly.js comes from the plotly wheel (requirements.txt) instead of 3 MB committed to the repo;
# served as static/vendor/plotly/plotly.min.js, loaded only by pages that draw charts.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/plotly", str(Path(plotly.__file__).resolve().parent / "package_data")),
]
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / "var" / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env.str(
            "STATICFILES_BACKEND",
            default="django.contrib.staticfiles.storage.StaticFilesStorage",
        )
    },
}

# --- Security -----------------------------------------------------------------------------------
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
# Both only take effect once SECURE_HSTS_SECONDS > 0, and scope to the dashboard's own host.
# `preload` is inert until the registrable domain's owner submits it to hstspreload.org (which
# needs the header on the apex, never the dashboard's host), so on by default: `check --deploy`
# stays clean with production's env. Set to 0 if the dashboard's host has plain-HTTP subdomains.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
# Probes (Docker HEALTHCHECK, load balancers) call /healthz over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- TOQ / AWS ----------------------------------------------------------------------------------
TOQ_ENV = env.str("TOQ_ENV", default="staging")
TOQ_MEDIA_BUCKET = env.str("TOQ_MEDIA_BUCKET", default="toq-listing-medias")
AWS_DEFAULT_REGION = env.str("AWS_DEFAULT_REGION", default="us-east-1")
# boto3 reads AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> and credentials itself.

# --- Sync ---------------------------------------------------------------------------------------
TOQ_SYNC_INTERVAL_SECONDS = env.int("TOQ_SYNC_INTERVAL_SECONDS", default=60)
# Rows per id-range chunk compared by checksum (and fetched per query).
TOQ_SYNC_CHUNK_SIZE = env.int("TOQ_SYNC_CHUNK_SIZE", default=5000)
# A job not terminal this many minutes after it was created (or first seen) counts as stuck in the
# UI (job list filter and badge). TOQ's reconciler only acts on RUNNING jobs, so PENDING ones can
# wait forever (reference §5 "Stuck jobs").
TOQ_STUCK_AFTER_MINUTES = env.int("TOQ_STUCK_AFTER_MINUTES", default=60)
# Diagnosis: a processing job still PENDING this many minutes after it began is reported as FM-29
# (stuck). Processing runs take about a minute; the default leaves room for long videos.
DIAGNOSIS_STUCK_AFTER_MINUTES = env.int("DIAGNOSIS_STUCK_AFTER_MINUTES", default=60)
# A failure group seen again after this many days without a new job counts as a regression.
DIAGNOSIS_REGRESSION_QUIET_DAYS = env.int("DIAGNOSIS_REGRESSION_QUIET_DAYS", default=7)

# --- Alerts and e-mail --------------------------------------------------------------------------
# Absolute base of the links in alerts (e-mail and webhook): /groups/<id>/ and /jobs/<toq_id>/.
TOQDASH_BASE_URL = env.str("TOQDASH_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Django's mail, configured by one URL (django-environ): smtp://user:pw@host:587, smtp+tls://…,
# smtp+ssl://…, consolemail:// (prints to stderr; the default, so nothing leaves a dev machine).
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
# Unset parts (None or "") keep Django's defaults instead of overriding them with None.
vars().update({key: value for key, value in EMAIL_CONFIG.items() if value not in (None, "")})
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="toqdash@localhost")
# Seconds; Django waits forever by default, which would hang the alerts task on a dead SMTP server.
EMAIL_TIMEOUT = 10

# --- Celery -------------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_IGNORE_RESULT = True  # nothing reads task results
CELERY_TASK_ACKS_LATE = True  # tasks are idempotent: a lost worker's task is redelivered
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # long ingestion tasks: do not hoard messages
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=600)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=900)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True


def _every(task: str, seconds: float) -> dict[str, Any]:
    """A beat entry: an interval (not crontab: the issues ask for cadences in seconds) that expires
    after 1.5 intervals, so a backlog never runs stale passes."""
    return {"task": task, "schedule": float(seconds), "options": {"expires": seconds * 1.5}}


CELERY_BEAT_SCHEDULE = {
    "every-1m-jobs-sync-toq": _every("jobs.toq_sync", TOQ_SYNC_INTERVAL_SECONDS),
}

# Diagnoses jobs whose evidence or the engine changed; cheap when nothing did.
CELERY_BEAT_SCHEDULE["every-2m-diagnosis-dispatch"] = _every("diagnosis.diagnose_dispatch", 120.0)
CELERY_BEAT_SCHEDULE["every-15m-diagnosis-groups-refresh"] = _every("diagnosis.failure_groups_refresh", 900.0)
# Alerts (diagnosis.alerts): new groups, regressions, spikes, stuck jobs. Five minutes keeps a
# spike's hourly window fresh; each alert is deduplicated, so a run repeating the last is harmless.
CELERY_BEAT_SCHEDULE["every-5m-diagnosis-alerts-evaluate"] = _every("diagnosis.alerts_evaluate", 300.0)

# --- Logging ------------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["stderr"], "level": LOG_LEVEL},
    "loggers": {"botocore": {"level": "WARNING"}, "urllib3": {"level": "WARNING"}},
}

# --- AWS evidence (awslogs) ---------------------------------------------------------------------
# botocore retry mode ("standard" or "adaptive") and total attempts per call (first try included),
# for throttling, 5xx and connection errors.
AWS_RETRY_MODE = env.str("AWS_RETRY_MODE", default="standard")
AWS_MAX_ATTEMPTS = env.int("AWS_MAX_ATTEMPTS", default=5)
AWS_CONNECT_TIMEOUT = env.float("AWS_CONNECT_TIMEOUT", default=5.0)
AWS_READ_TIMEOUT = env.float("AWS_READ_TIMEOUT", default=30.0)
# Page size asked of list/filter APIs (AWS maxima: SFN 1000, Logs 10000, S3 1000).
AWS_PAGE_SIZE = env.int("AWS_PAGE_SIZE", default=1000)
# The TOQ server's own log group in CloudWatch (empty: not shipped to CloudWatch, skip it).
TOQ_SERVER_LOG_GROUP = env.str("TOQ_SERVER_LOG_GROUP", default="")
TOQ_MAIN_QUEUE = env.str("TOQ_MAIN_QUEUE", default=f"listing-media-processing-{TOQ_ENV}")
TOQ_DLQ = env.str("TOQ_DLQ", default=f"listing-media-processing-dlq-{TOQ_ENV}")
# How far back to look for a job's executions when it has neither created_at nor started_at and no
# neighbouring job bounds the window (older schema; no callback yet).
AWSLOGS_SEARCH_BACK_DAYS = env.int("AWSLOGS_SEARCH_BACK_DAYS", default=7)
# Margin around an execution's window when reading log groups (Lambda lines precede/follow it).
AWSLOGS_LOG_MARGIN_SECONDS = env.int("AWSLOGS_LOG_MARGIN_SECONDS", default=120)
# Jobs the periodic dispatcher fans out per run (each is one Celery task).
AWSLOGS_DISPATCH_LIMIT = env.int("AWSLOGS_DISPATCH_LIMIT", default=200)
AWSLOGS_DISPATCH_INTERVAL_SECONDS = env.int("AWSLOGS_DISPATCH_INTERVAL_SECONDS", default=300)
# The UI warns that AWS evidence is behind when the last successful collection pass (a dispatcher
# run or a whole `collect_aws`) is older than this; 0 turns the warning off. Three dispatch intervals,
# like the sync's staleness.
AWSLOGS_STALE_AFTER_SECONDS = env.int("AWSLOGS_STALE_AFTER_SECONDS", default=3 * AWSLOGS_DISPATCH_INTERVAL_SECONDS)
# Evidence is not urgent (a person reads it after the fact); every 5 min keeps API calls low.
CELERY_BEAT_SCHEDULE["every-5m-awslogs-dispatch"] = _every(
    "awslogs.evidence_dispatch", AWSLOGS_DISPATCH_INTERVAL_SECONDS
)
# --- end AWS evidence (awslogs) -------------------------------------------------------------------

# --- Job page -----------------------------------------------------------------------------------
# Lifetime of the presigned S3 GET URLs behind the derivative previews and the MP4 link. Short: a
# copied link stops working soon; the page signs fresh ones on every load.
S3_PRESIGNED_URL_EXPIRES_SECONDS = env.int("S3_PRESIGNED_URL_EXPIRES_SECONDS", default=300)
# A TOQ-vs-AWS disagreement that can be a race (an execution closed, the callback and the next sync
# still on their way; evidence collected just before the job's row changed) is reported only after
# this many minutes.
TOQ_DISAGREEMENT_GRACE_MINUTES = env.int("TOQ_DISAGREEMENT_GRACE_MINUTES", default=5)

# --- Reprocessing (reprocess) ---------------------------------------------------------------------
# A bulk reprocess's default rate limit in jobs per minute (the admin may change it per batch,
# 1..600). Each job is one SQS message or one StartExecution, and each new execution may start a
# MediaConvert job, so the default is gentle.
REPROCESS_BULK_RATE_PER_MINUTE = env.int("REPROCESS_BULK_RATE_PER_MINUTE", default=30)
# Seconds between bulk ticks (beat), which is also how long one batch run works before yielding
# its worker. A run sleeps between items to keep the rate smooth, so one worker slot stays busy while
# a batch runs.
REPROCESS_BULK_TICK_SECONDS = env.int("REPROCESS_BULK_TICK_SECONDS", default=10)
# Seconds after which a claim nobody finished is taken to belong to a dead process: a batch item's
# claim is taken over, and a reprocess action still pending is reconciled with AWS. This must be more
# than a live process can take over one action: the bulk task's hard limit (360 s), or two AWS calls
# with botocore's retries (2 × AWS_MAX_ATTEMPTS × (connect + read timeout) ≈ 350 s by default).
REPROCESS_CLAIM_TIMEOUT_SECONDS = env.int("REPROCESS_CLAIM_TIMEOUT_SECONDS", default=900)
# TOQ's own API, for the "process" action (ask TOQ to process the listing again through
# POST /api/v2/listings/media/uploads/process, as its users do). Empty base URL or token: the action
# is not available. The base is TOQ's origin (e.g. https://api.toq.example), without /api/v2. The
# token is a TOQ access token (JWT) of a user TOQ allows to call that route; it is a secret: sent
# only in the Authorization header, never logged, stored in the audit nor shown.
TOQ_API_BASE_URL = env.str("TOQ_API_BASE_URL", default="")
TOQ_API_TOKEN = env.str("TOQ_API_TOKEN", default="")
# Seconds to wait for TOQ's answer (connect and read). The request is never retried by toqdash.
TOQ_API_TIMEOUT_SECONDS = env.float("TOQ_API_TIMEOUT_SECONDS", default=10.0)
# Runs every running batch's due items. Short: it is what keeps a batch going (and what resumes
# it after a worker restart); a tick with no running batch is one indexed query.
CELERY_BEAT_SCHEDULE["every-10s-reprocess-bulk-tick"] = _every("reprocess.bulk_tick", REPROCESS_BULK_TICK_SECONDS)
# Links resubmits to the executions TOQ's validate Lambda started for them; those executions
# are collected by awslogs every 5 min, so linking more often would find nothing new.
CELERY_BEAT_SCHEDULE["every-5m-reprocess-link-executions"] = _every("reprocess.link_executions", 300.0)
# Actions left pending by a dead process (only after REPROCESS_CLAIM_TIMEOUT_SECONDS); rare.
CELERY_BEAT_SCHEDULE["every-5m-reprocess-reconcile-pending"] = _every("reprocess.reconcile_pending", 300.0)
# --- end Reprocessing (reprocess) -----------------------------------------------------------------
