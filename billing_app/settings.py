"""Billing Desk settings, read from the environment.

Development and the demo run on SQLite with Celery tasks executed in-process.
Production (``DJANGO_DEBUG`` unset) must name its secrets explicitly: the system
checks in ``billing_app.checks`` refuse to start without them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)
# The demo connector and the demo host page; refused by a system check when DEBUG is off.
DEMO_MODE = env_bool("BILLING_DESK_DEMO", False)
TESTING = env_bool("BILLING_DESK_TESTING", "pytest" in sys.modules)
# The sandbox provider simulates billing (no money moves): only the demo and the tests may
# serve it. Elsewhere the provider registry leaves it out, get_provider refuses it and
# checks.E010/E011 refuse to start (issue 12: a sandbox workspace in production "refunded").
BILLING_DESK_SANDBOX_ENABLED = env_bool("BILLING_DESK_SANDBOX_ENABLED", DEMO_MODE or TESTING)

# Production gets no default secret: checks.E001 names it when missing.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or (
    "insecure-dev-only-key-billing-desk" if (DEBUG or TESTING) else ""
)
# Fernet keys (comma-separated, newest first) encrypting secrets stored in the database.
FIELD_ENCRYPTION_KEYS = env_list("BILLING_DESK_ENCRYPTION_KEYS")

ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver" if (DEBUG or TESTING) else ""
)
# Production refuses to start without its secrets: raising at import stops gunicorn and every
# management command, instead of a server that answers 500 on every URL. (checks.E001-E003
# name the same settings for configurations changed after import.)
if not DEBUG and not TESTING:
    _missing = [
        name
        for name, value in (
            ("DJANGO_SECRET_KEY", SECRET_KEY),
            ("BILLING_DESK_ENCRYPTION_KEYS", FIELD_ENCRYPTION_KEYS),
            ("DJANGO_ALLOWED_HOSTS", ALLOWED_HOSTS),
        )
        if not value
    ]
    if _missing:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            f"DJANGO_DEBUG is off and {', '.join(_missing)} "
            f"{'is' if len(_missing) == 1 else 'are'} not set: Billing Desk refuses to start "
            "without its secrets. Set them in the environment (an encryption key is printed by "
            "`DJANGO_DEBUG=1 python manage.py generate_encryption_key`)."
        )
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
PUBLIC_BASE_URL = os.environ.get("BILLING_DESK_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
# The support contact build_helpdesk_apps writes as the Zendesk app's author (issue 16):
# set when BILLING_DESK_APP_AUTHOR_EMAIL is; the name and the URL have defaults.
HELPDESK_APP_AUTHOR = (
    {
        "name": os.environ.get("BILLING_DESK_APP_AUTHOR_NAME", "Billing Desk"),
        "email": os.environ["BILLING_DESK_APP_AUTHOR_EMAIL"],
        "url": os.environ.get("BILLING_DESK_APP_AUTHOR_URL", PUBLIC_BASE_URL),
    }
    if os.environ.get("BILLING_DESK_APP_AUTHOR_EMAIL")
    else None
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "guardian",
    # Approvers' second factor (issue 17): TOTP devices and single-use recovery codes.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "helpdesk_connectors",
    "billing_app",
]

MIDDLEWARE = [
    # First: the JSON error envelope on /api/, the helpdesk entries, /demo/ and /webhooks/
    # (a 413 before the body is read, JSON 404/405/500 in DEBUG too). billing_app/middleware.py
    "billing_app.middleware.JsonErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): whether this session passed the second factor (issue 17).
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# django-otp (issue 17; docs/two-factor.md): admins never read an approver's TOTP key in
# admin, and authenticator apps list the account under the product's name.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
OTP_TOTP_ISSUER = "Billing Desk"

ROOT_URLCONF = "billing_app.urls"
WSGI_APPLICATION = "billing_app.wsgi.application"
ASGI_APPLICATION = "billing_app.asgi.application"

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
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'var' / 'billing_desk.sqlite3'}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            # RedisCache that degrades to a miss when Redis is down (billing_app/cache.py).
            "BACKEND": "billing_app.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "billing-desk"),
            "TIMEOUT": 300,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: Redis as broker in production; with no broker, tasks run in-process.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL) or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool(
    "CELERY_TASK_ALWAYS_EAGER", CELERY_BROKER_URL == "memory://" or TESTING
)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "billing-desk"
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The broker is a doorbell, not the record (services/outbox.py): side effects are rows
# re-driven every minute, a killed worker's claim lapses after outbox.LEASE (5 min).
# No task may run longer than CELERY_TASK_TIME_LIMIT; Redis hands an unacknowledged
# message to another worker after visibility_timeout, so it must exceed that limit (a task
# still running is never run twice) and every countdown still in use (ticket sync <= 10 min,
# monthly report 5 min). It only decides how soon a task lost with its worker comes back
# (35 min instead of the default hour); notes, escalations and webhook processing do not
# wait for it. Socket timeouts bound what a doorbell costs a request while Redis is away.
CELERY_TASK_TIME_LIMIT = 30 * 60
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 35 * 60,
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
# One quick retry of a publish, then the doorbell gives up (~0.5 s while Redis refuses,
# instead of ~1 s by default): the row is already committed and the re-drive sends it.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user row
GUARDIAN_RAISE_403 = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/approvals/"

LANGUAGE_CODE = "en"
# The panel, notes and customer messages speak the agent's (or the customer's) language
# (issue 16): English is the source language, German is complete. The agent's language
# comes from their helpdesk profile, carried in the app session; web pages (approvals,
# sign-in) follow the browser's Accept-Language through LocaleMiddleware.
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "helpdesk_connectors.authentication.AppSessionAuthentication"
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's JSONParser with a depth and size limit (4,000 nested "[" was a RecursionError).
    "DEFAULT_PARSER_CLASSES": ["billing_app.api.parsers.BoundedJSONParser"],
    "EXCEPTION_HANDLER": "billing_app.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Billing Desk API",
    "DESCRIPTION": "Billing context and role-limited billing actions for helpdesk app panels.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

# Security headers. Panel pages relax frame-ancestors for their installation only.
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("DJANGO_BEHIND_TLS_PROXY") else None
)
if not DEBUG and not TESTING:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000"))

# Helpdesk connectors, loaded by dotted path (STYLE.md 4).
HELPDESK_CONNECTORS = {
    "zendesk": "helpdesk_connectors.zendesk.connector.ZendeskConnector",
    "freshdesk": "helpdesk_connectors.freshdesk.connector.FreshdeskConnector",
    "demo": "helpdesk_connectors.demo.connector.DemoConnector",
}
# Billing providers, loaded by dotted path like the connectors (billing_app/providers):
# an unknown key is an error; the sandbox is registered only where it is enabled.
BILLING_PROVIDERS = {
    "stripe": "billing_app.providers.stripe.provider.StripeProvider",
    **(
        {"sandbox": "billing_app.providers.sandbox.provider.SandboxProvider"}
        if BILLING_DESK_SANDBOX_ENABLED
        else {}
    ),
}
# Origins that serve Freshworks (FDK) app frames, allowed to frame the Freshdesk panel beside the
# account's own Freshdesk. Default: the CDN Freshworks' developer guide names (docs/threat-model.md).
FRESHWORKS_APP_FRAME_ORIGINS = env_list(
    "BILLING_DESK_FRESHWORKS_APP_FRAME_ORIGINS", "https://d3h0owdjgzys62.cloudfront.net"
)
# App session tokens minted after a verified entry.
APP_SESSION_TTL_SECONDS = int(os.environ.get("BILLING_DESK_SESSION_TTL", "900"))
# How long a cached sign-in check lives (helpdesk_connectors.session_cache); 0 turns it off.
# Unset: 120, and off under tests (their transactions never commit the version bumps).
if os.environ.get("BILLING_DESK_SESSION_CACHE_SECONDS"):
    APP_SESSION_CACHE_SECONDS = int(os.environ["BILLING_DESK_SESSION_CACHE_SECONDS"])
# Longest ``exp - iat`` accepted on a Zendesk signed-URL token (plus 30 s leeway). Zendesk does
# not publish its lifetime; 5 minutes is a conservative maximum. Tokens are single use.
ZENDESK_TOKEN_MAX_LIFETIME_SECONDS = int(
    os.environ.get("BILLING_DESK_ZENDESK_TOKEN_MAX_LIFETIME", "300")
)

# Stripe: one StripeClient per workspace, every call pinned to this API version.
STRIPE_API_VERSION = "2026-10-28.endive"
STRIPE_TIMEOUT_SECONDS = float(os.environ.get("STRIPE_TIMEOUT_SECONDS", "10"))
STRIPE_MAX_NETWORK_RETRIES = int(os.environ.get("STRIPE_MAX_NETWORK_RETRIES", "2"))
STRIPE_WEBHOOK_TOLERANCE_SECONDS = 300
# Only for a local Stripe stand-in (stripe-mock, bench/): empty means Stripe itself.
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "").rstrip("/")
# The mirror is "fresh" for this long; older data is shown with a refresh in the background.
MIRROR_STALE_AFTER_SECONDS = int(os.environ.get("BILLING_DESK_MIRROR_STALE_AFTER", "900"))
# The Redis accelerator in front of the context snapshots (services/context_cache.py): seconds
# an entry lives; 0 turns it off. Unset: 60, and off under tests.
if os.environ.get("BILLING_DESK_CONTEXT_CACHE_SECONDS"):
    BILLING_DESK_CONTEXT_CACHE_SECONDS = int(os.environ["BILLING_DESK_CONTEXT_CACHE_SECONDS"])

EMAIL_BACKEND = os.environ.get(
    "DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "billing-desk@localhost")
# SMTP (DJANGO_EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend); any other Django
# backend reads its own settings. Freshdesk device codes (issue 17) go out this way.
EMAIL_HOST = os.environ.get("DJANGO_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("DJANGO_EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("DJANGO_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("DJANGO_EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("DJANGO_EMAIL_USE_TLS")
EMAIL_USE_SSL = env_bool("DJANGO_EMAIL_USE_SSL")
EMAIL_TIMEOUT = int(os.environ.get("DJANGO_EMAIL_TIMEOUT", "30"))
MONTHLY_REPORT_RECIPIENTS = env_list("BILLING_DESK_REPORT_RECIPIENTS")

# Bodies larger than this are refused with 413 before they are read (JSON surfaces) or by
# Django (HTML pages). Ours are a few kB; Stripe events stay well under 1 MiB.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("BILLING_DESK_MAX_BODY_BYTES", str(1024 * 1024)))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # A burst of identical WARNING+ lines (an outage: every request failing alike) is the
    # first 10 per minute, one traceback, then a count (billing_app/log_limits.py).
    "filters": {
        "repeat_limit": {
            "()": "billing_app.log_limits.RepeatLimitFilter",
            "per_window": int(os.environ.get("LOG_REPEAT_LIMIT_PER_MINUTE", "10")),
            "window_seconds": 60,
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["repeat_limit"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own DEBUG-only console handler would print every request error a second
        # time: its lines reach the root handler above (rate-limited) and nowhere else.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        # stripe-python logs request URLs (e-mail look-ups in the query) at INFO and whole
        # response bodies (names, addresses) at DEBUG: ours log the ids instead.
        "stripe": {"level": "WARNING"},
    },
}
APP_SESSION_RESOLVER = "billing_app.services.identity.app_session_resolve"
# Helpdesk entry views hand each verified HelpdeskIdentity to this callable (billing side).
HELPDESK_SIGN_IN = "billing_app.services.identity.agent_sign_in"
# Per-workspace playbook wording (PlaybookTemplate rows, edited in admin) before the brief's.
BILLING_DESK_PLAYBOOK_LOADER = "billing_app.selectors.playbook_templates.playbook_template_load"

# --- Dashboard, monthly report and ticket sync (issue 8) -------------------------------------
from celery.schedules import crontab  # noqa: E402

CELERY_BEAT_SCHEDULE = {
    "tickets-sync": {
        "task": "billing_app.tasks.reports.tickets_sync_all_task",
        "schedule": 15 * 60,
    },
    "monthly-report": {
        "task": "billing_app.tasks.reports.monthly_reports_task",
        "schedule": crontab(minute=0, hour=6, day_of_month=1),
    },
    "approvals-expire": {
        "task": "billing_app.tasks.approvals.approvals_expire_task",
        "schedule": 5 * 60,
    },
    # The outbox re-drive: notes, escalations and invoice fetches pending and due, and Stripe
    # events still unprocessed (doorbell lost with the broker, worker died, or failed and due).
    "outbox-redrive": {
        "task": "billing_app.tasks.outbox.outbox_redrive_task",
        "schedule": 60,
        "options": {"expires": 55},  # a run still queued when the next is due is dropped
    },
    # Actions whose provider answer was lost (outcome_unknown: settled within a minute of
    # Stripe answering again) or left "executing" by a worker that died mid-action.
    "actions-reconcile": {
        "task": "billing_app.tasks.reconcile.actions_reconcile_task",
        "schedule": 30,
        "options": {"expires": 25},  # a run that waited past the next one is dropped
    },
    # Context snapshots (issue 15): rows a lost doorbell left pending, and recently used
    # snapshots whose time horizon passed (a trial ended), rebuilt ahead of the next read.
    "snapshots-redrive": {
        "task": "billing_app.tasks.snapshots.snapshots_redrive_task",
        "schedule": 60,
        "options": {"expires": 55},
    },
    # The audit chain of every active workspace verified daily (issue 17, docs/audit.md):
    # the dashboard's health shows the result, a broken chain is logged at error level.
    "audit-verify": {
        "task": "billing_app.tasks.audit.audit_verify_all_task",
        "schedule": crontab(minute=30, hour=3),
    },
    # Card-update prompts (issue 18, docs/self-service.md): the daily scan of opted-in
    # workspaces; the emails go out through the outbox (its re-drive retries them).
    "card-prompts-scan": {
        "task": "billing_app.tasks.card_prompts.card_prompts_scan_task",
        "schedule": crontab(minute=0, hour=9),
    },
    # Self-service refund requests (issue 18, docs/self-service.md section 2) left received
    # without their action by a submitter that died: the action its key made is recorded on
    # the request, or the request is submitted again (its idempotency key makes it once).
    "self-service-refunds-redrive": {
        "task": "billing_app.tasks.self_service_refunds.refund_requests_redrive_task",
        "schedule": 2 * 60,
        "options": {"expires": 110},
    },
}
# How far back the first ticket export of an installation reaches.
TICKET_SYNC_INITIAL_DAYS = int(os.environ.get("BILLING_DESK_TICKET_SYNC_DAYS", "365"))
# Provider-call records written inside a caller's transaction go through a second
# connection (survives the caller's rollback). None = on for PostgreSQL outside tests.
PROVIDER_CALLS_SIDE_CONNECTION = None
