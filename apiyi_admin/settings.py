"""One env-driven settings module.

Embedded defaults (SQLite, local-memory cache, a file-system Celery broker) need no
server; DATABASE_URL and REDIS_URL switch to PostgreSQL and Redis. PRODUCTION=1 turns
on the HTTPS and cookie settings that `check --deploy` expects and refuses to start
without a real SECRET_KEY.
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from csp.constants import NONCE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    """Read a setting from NAME, or from the file named by NAME_FILE (for secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    return env(name, "1" if default else "0").strip().lower() in {"1", "true", "yes", "on"}


def envint(name: str, default: int) -> int:
    return int(env(name, str(default)))


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


VAR_DIR = Path(env("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

PRODUCTION = envbool("PRODUCTION", False)
DEBUG = envbool("DEBUG", False)


def _embedded_secret() -> str:
    """A per-checkout secret kept in var/, so every demo process agrees on it."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) is required when PRODUCTION=1")
    SECRET_KEY = _embedded_secret()

# Old SECRET_KEYs still accepted for sessions and signed values while rotating (newest first).
SECRET_KEY_FALLBACKS = envlist("SECRET_KEY_FALLBACKS")
# Keyed hash for sk-/mk- keys; rotating SECRET_KEY must not invalidate every API key.
KEY_HASH_SECRET = env("KEY_HASH_SECRET") or SECRET_KEY
# Comma-separated Fernet keys, newest first; empty derives one from SECRET_KEY.
FERNET_KEYS = envlist("FERNET_KEYS")

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")
# The API base URL shown in code examples; empty: the console's own origin, from the request.
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", "").rstrip("/")
# Smallest recharge the console accepts, in yuan.
RECHARGE_MIN_CNY = env("RECHARGE_MIN_CNY", "10")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "accounts",
    "groups",
    "tokens",
    "billing",
    "relay",
    # The project package is an app too, for the commands that span every app (seed_demo).
    "apiyi_admin",
    "axes",
    "csp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.TimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    "apiyi_admin.security_headers.PermissionsPolicyMiddleware",
    # Must stay last: turns a django-axes lockout into a 429 response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "apiyi_admin.urls"
WSGI_APPLICATION = "apiyi_admin.wsgi.application"
ASGI_APPLICATION = "apiyi_admin.asgi.application"

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
                "csp.context_processors.nonce",
                "accounts.context_processors.console_locale",
            ],
        },
    }
]

DATABASE_URL = env("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"].setdefault("OPTIONS", {})
        # psycopg prepares a statement after this many runs on a connection; only the relay's
        # server-bound hold and settlement use it (Django's own cursors bind client-side).
        # 0 turns it off (e.g. behind a transaction-pooling PgBouncer).
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = envint("DB_PREPARE_THRESHOLD", 5) or None
        if envbool("DB_POOL", True):
            # The pool checks a connection before handing it out: one that a database restart
            # broke is replaced instead of failing the next request (Django passes
            # ConnectionPool.check_connection to the pool when CONN_HEALTH_CHECKS is on).
            DATABASES["default"]["CONN_HEALTH_CHECKS"] = envbool("DB_POOL_CHECK", True)
            DATABASES["default"]["OPTIONS"]["pool"] = {
                "min_size": envint("DB_POOL_MIN", 2),
                "max_size": envint("DB_POOL_MAX", 20),
                "timeout": envint("DB_POOL_TIMEOUT", 10),
                # A failed connection attempt is retried with a doubling delay until this many
                # seconds, then dropped, and the next waiting request starts a fresh one: short,
                # so after an outage the pool reconnects within seconds, not after a delay as
                # long as the outage was (psycopg_pool's default is 300 s).
                "reconnect_timeout": envint("DB_POOL_RECONNECT_TIMEOUT", 5),
            }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "db.sqlite3"),
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }

REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            # Falls back to per-process local memory while Redis is down (see /readyz).
            "BACKEND": "core.cache.FallbackRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", "apiyi"),
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
elif envbool("SHARED_FILE_CACHE", False):
    # `make demo`: relay, worker and beat share state through a folder, no server needed.
    CACHES = {
        "default": {
            "BACKEND": "core.cache.SharedFileCache",
            "LOCATION": str(VAR_DIR / "cache"),
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "apiyi",
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"
# Login throttling (django-axes): a locked-out username+IP is refused before any password check.
AUTHENTICATION_BACKENDS = [
    "accounts.auth_backends.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = envint("LOGIN_LOCKOUT_MINUTES", 15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_CALLABLE = "accounts.signals.axes_username"
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
# Reverse proxies in front of the app whose X-Forwarded-For may be trusted (0 = none).
AXES_IPWARE_PROXY_COUNT = envint("TRUSTED_PROXY_COUNT", 0) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if AXES_IPWARE_PROXY_COUNT else ["REMOTE_ADDR"]
)

# Languages and time zones: the console speaks Simplified Chinese and English. The language
# comes from the switcher's cookie, else Accept-Language; times are shown in the user's own
# time zone, else the language's default zone (Asia/Shanghai for Chinese), else TIME_ZONE.
LANGUAGE_CODE = "en"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
FORMAT_MODULE_PATH = ["apiyi_admin.formats"]
TIME_ZONE = env("TIME_ZONE", "UTC")
LANGUAGE_TIME_ZONES = {"zh-hans": env("ZH_TIME_ZONE", "Asia/Shanghai")}
USE_I18N = True
USE_TZ = True
# Fallback groups a token may have: the guide recommends 1–2 (form, service and API enforce it).
TOKEN_MAX_FALLBACK_GROUPS = envint("TOKEN_MAX_FALLBACK_GROUPS", 2)
# Self-service sign-up on the login page: off in production unless the operator turns it on.
SIGNUP_ENABLED = envbool("SIGNUP_ENABLED", not PRODUCTION)
# Password reset mails; the embedded default prints them on the console.
EMAIL_BACKEND = env(
    "EMAIL_BACKEND", f"django.core.mail.backends.{'smtp' if PRODUCTION else 'console'}.EmailBackend"
)
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "apiyi console <noreply@localhost>")

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
FORMS_URLFIELD_ASSUME_HTTPS = True

# Security: safe defaults everywhere, HTTPS-only settings in production.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = envint("SESSION_COOKIE_AGE", 60 * 60 * 12)
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    # Load balancers probe over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    # __Host- cookies: HTTPS only, no Domain, path /; a subdomain cannot plant or read them.
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"
SESSION_EXPIRE_AT_BROWSER_CLOSE = envbool("SESSION_EXPIRE_AT_BROWSER_CLOSE", False)
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
# CSP (django-csp): scripts only from our origin or carrying the per-request nonce
# (`<script nonce="{{ CSP_NONCE }}">`); no inline style attributes; htmx must not eval
# (no hx-on, no js: in hx-vals, htmx.config.includeIndicatorStyles = false).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", NONCE],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Relay limits.
RELAY_MAX_BODY_BYTES = envint("RELAY_MAX_BODY_BYTES", 20 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = RELAY_MAX_BODY_BYTES
RELAY_UPSTREAM_CONNECT_TIMEOUT = float(env("RELAY_UPSTREAM_CONNECT_TIMEOUT", "10"))
RELAY_UPSTREAM_READ_TIMEOUT = float(env("RELAY_UPSTREAM_READ_TIMEOUT", "300"))
# Sanity limits the relay enforces with a 400 before any hold: max_tokens / max_output_tokens
# above RELAY_MAX_TOKENS_LIMIT, video `seconds` above RELAY_MAX_VIDEO_SECONDS.
RELAY_MAX_TOKENS_LIMIT = envint("RELAY_MAX_TOKENS_LIMIT", 1_000_000)
RELAY_MAX_VIDEO_SECONDS = envint("RELAY_MAX_VIDEO_SECONDS", 120)
# Longest a relay call may hold money, streams included; the hold sweeper waits longer.
RELAY_MAX_CALL_SECONDS = envint("RELAY_MAX_CALL_SECONDS", 1800)
# How long /v1/responses answers stay readable (GET /v1/responses/{id}, previous_response_id).
RELAY_RESPONSES_TTL_S = envint("RELAY_RESPONSES_TTL_S", 24 * 3600)
# Holds, settlements and refusals of relay calls micro-batched on the event loop (billing/ledger.py
# `BatchedLedger`); PostgreSQL only. Off: each runs as its own transaction through a thread hop.
BILLING_LEDGER_BATCHED = envbool(
    "BILLING_LEDGER_BATCHED", DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
)
# A hold with no release after this long was abandoned (a crashed process): the sweeper
# releases it. Video jobs settle later, from the worker, so they get their own, longer limit.
BILLING_HOLD_STALE_AFTER_S = envint("BILLING_HOLD_STALE_AFTER_S", 2 * RELAY_MAX_CALL_SECONDS)
BILLING_VIDEO_HOLD_STALE_AFTER_S = envint("BILLING_VIDEO_HOLD_STALE_AFTER_S", 48 * 3600)
# Settlements that could not commit (database unreachable) wait here, on local disk, for
# replay (billing/spool.py); the relay retries them at most this often (0: only beat and
# `manage.py replay_spool` do).
BILLING_SPOOL_DIR = Path(env("BILLING_SPOOL_DIR", str(VAR_DIR / "spool")))
BILLING_SPOOL_REPLAY_INTERVAL_S = float(env("BILLING_SPOOL_REPLAY_INTERVAL_S", "5"))

# Celery: Redis when REDIS_URL is set, else a file-system broker that needs no server.
CELERY_BROKER_DIR = VAR_DIR / "celery"
# Redis hands an unacknowledged message (its worker died) to another worker after this long:
# it must exceed the longest task (a probe: PROBE_TIMEOUT_S; a video poll: a 30 s GET) and the
# longest countdown (5 s), or a live task's message would run twice.
CELERY_VISIBILITY_TIMEOUT_S = envint("CELERY_VISIBILITY_TIMEOUT_S", 300)
if REDIS_URL:
    CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "visibility_timeout": CELERY_VISIBILITY_TIMEOUT_S,
        # look for such messages every tenth of that, not every 100 s
        "unacked_restore_interval": max(1, CELERY_VISIBILITY_TIMEOUT_S // 10),
        "unacked_restore_throttle": 1,
    }
else:
    CELERY_BROKER_URL = env("CELERY_BROKER_URL", "filesystem://")
    for sub in ("queue", "processed", "control"):
        (CELERY_BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
# Every task here is safe to run twice, so a message is acknowledged only once its task has
# finished: a worker killed mid-task (or a pool child lost) leaves it to run again.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Probes: a tick enqueues the channels that are due; each entry expires within its period.
# Optional bearer token for /metrics (channel names and load are operational detail).
METRICS_TOKEN = env("METRICS_TOKEN")
PROBE_TICK_S = float(env("PROBE_TICK_S", "5"))
PROBE_TIMEOUT_S = float(env("PROBE_TIMEOUT_S", "20"))
PROBE_RECOVERY_SUCCESSES = envint("PROBE_RECOVERY_SUCCESSES", 2)
CHANNEL_HEALTH_KEEP_DAYS = envint("CHANNEL_HEALTH_KEEP_DAYS", 7)
CELERY_BEAT_SCHEDULE: dict = {
    "probe-tick": {
        "task": "groups.tasks.probe_tick",
        "schedule": PROBE_TICK_S,
        "options": {"expires": PROBE_TICK_S},
    },
    "channel-health-prune": {
        "task": "groups.tasks.channel_health_prune",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
}
# A video job no poll touched for this long lost its poll chain; beat starts a new one.
VIDEO_POLL_STALE_AFTER_S = envint("VIDEO_POLL_STALE_AFTER_S", 300)
CELERY_BEAT_SCHEDULE["video-jobs-resume"] = {
    "task": "relay.tasks.video_jobs_resume",
    "schedule": 60.0,
    "options": {"expires": 55},
}
CELERY_BEAT_SCHEDULE["billing-release-stale-holds"] = {
    "task": "billing.tasks.holds_release_stale",
    "schedule": 300.0,
    "options": {"expires": 290},
}
CELERY_BEAT_SCHEDULE["billing-spool-replay"] = {
    "task": "billing.tasks.spool_replay",
    "schedule": 60.0,
    "options": {"expires": 55},
}

REST_FRAMEWORK = {
    # mk- keys first, so an anonymous request gets 401 with a WWW-Authenticate header.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api.authentication.ManagementKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "accounts.api.permissions.KeyScope",
    ],
    # Ordering comes from each FilterSet (the console's), so one `ordering` parameter per list.
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "core.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "COERCE_DECIMAL_TO_STRING": True,
    "EXCEPTION_HANDLER": "apiyi_admin.api_errors.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "apiyi-admin API",
    "DESCRIPTION": "Automation API: tokens, groups, models, usage, wallet, operator resources.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"BillingModeEnum": "tokens.models.BillingMode"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apiyi_admin.api_errors.add_error_responses",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.server": {"level": "WARNING"}},
}
