"""The portal's one settings module: every value comes from the environment (django-environ).

Development needs nothing set: DEBUG is on, the database is a SQLite file under ``var/`` and
``AUTH_MODE`` is ``local``. Production sets ``DEBUG=false`` and must then provide ``SECRET_KEY``
and ``ALLOWED_HOSTS``; the security headers below follow from ``DEBUG`` being off.
"""

import hashlib
import os
from datetime import timedelta
from pathlib import Path

import environ
from csp import constants as csp
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)

if DEBUG:
    # A development-only key: with DEBUG off, SECRET_KEY is required (below).
    SECRET_KEY = env.str("SECRET_KEY", default="dev-insecure-key-do-not-use-in-production")
else:
    SECRET_KEY = env.str("SECRET_KEY")

# The key that signs the audit chain's checkpoints (provisioning.audit): the database never holds it, and in
# production only the workers get it (docker-compose.yml). Development derives one from SECRET_KEY; with
# DEBUG off, checkpointing and ``audit_verify`` refuse to run without it (the web never needs it).
AUDIT_ANCHOR_KEY = env.str("AUDIT_ANCHOR_KEY", default="")
if DEBUG and not AUDIT_ANCHOR_KEY:
    AUDIT_ANCHOR_KEY = hashlib.sha256(b"portal-audit-anchor-dev:" + SECRET_KEY.encode()).hexdigest()
# How often the scheduler queues a checkpoint of the audit chain.
AUDIT_CHECKPOINT_MINUTES = env.float("AUDIT_CHECKPOINT_MINUTES", default=5.0)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_rq",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "accounts",
    "provisioning",
    "axes",
]

MIDDLEWARE = [
    # First: /healthz and /readyz answer probes before the host check and the TLS redirect (portal/health.py).
    "portal.health.HealthMiddleware",
    # Times each request by view for /metrics (portal/metrics.py).
    "portal.metrics.RequestMetrics",
    # An id per web request for its log lines, returned in X-Request-ID (portal/log_context.py).
    "portal.log_context.RequestId",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "provisioning.api.middleware.ApiAuditChannel",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "accounts.context_processors.personas",
                "provisioning.context_processors.approvals_waiting",
            ],
        },
    },
]

# Database: PostgreSQL in production and CI; a SQLite file when DATABASE_URL is unset.
VAR_DIR = Path(env.str("PORTAL_VAR_DIR", default=str(BASE_DIR / "var")))
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # IMMEDIATE takes the write lock at BEGIN, so the web and the worker queue up instead of failing
    # with "database is locked" halfway through a transaction.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"transaction_mode": "IMMEDIATE", "timeout": 20})
    # A file, not memory, so worker processes started by end-to-end tests share the test database.
    # One file per test process, so two test runs on one machine never share a database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
else:
    # A web process keeps its PostgreSQL connection between requests (checked before reuse) instead of
    # opening one per request: 3.5 ms on a loopback server, tens of milliseconds with TLS to a managed one.
    # Workers fork a process per job, which opens its own. 0 opens one per request again.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"

# Local passwords are throttled (django-axes): 5 failures in a row for one username from one client address
# lock that pair out for AXES_COOLOFF_MINUTES, even with the right password; a success resets the count.
# Per username and address, so nobody can lock a colleague out from elsewhere. Entra ID sign-in throttles
# on Microsoft's side. Sign-ins, failures, lockouts and sign-outs are audited (provisioning.signin_audit).
AUTHENTICATION_BACKENDS = [
    "accounts.backends.ThrottledBackend",  # django-axes' AxesStandaloneBackend
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
# The client's address: REMOTE_ADDR, or behind the TLS proxy the address that proxy appended to
# X-Forwarded-For (the entries before it are the client's to write).
AXES_CLIENT_IP_CALLABLE = "portal.client_ip.client_ip"
# axes would log every failure with the typed username (sometimes a password typed in the wrong field).
AXES_VERBOSE = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Sign-in: "entra" (Microsoft Entra ID through MSAL; the ENTRA_* block below) or "local" (Django
# accounts). Local accounts are for development; with DEBUG off the portal refuses to start in local
# mode unless explicitly allowed. "none": a process that serves no pages (the worker, the scheduler,
# migrate), so it needs no sign-in secret and signs nobody in.
AUTH_MODE = env.str("AUTH_MODE", default="local")
ALLOW_LOCAL_AUTH_IN_PRODUCTION = env.bool("ALLOW_LOCAL_AUTH_IN_PRODUCTION", default=False)
if AUTH_MODE not in {"local", "entra", "none"}:
    raise ImproperlyConfigured(f"AUTH_MODE={AUTH_MODE!r} is not supported; use 'entra', 'local' or 'none'.")
if AUTH_MODE == "local" and not DEBUG and not ALLOW_LOCAL_AUTH_IN_PRODUCTION:
    raise ImproperlyConfigured(
        "AUTH_MODE=local uses Django passwords and is meant for development. With DEBUG off, set "
        "ALLOW_LOCAL_AUTH_IN_PRODUCTION=true to run it anyway."
    )

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# Mail (notifications, sent from the outbox by a worker): SMTP in production (EMAIL_HOST and friends), the
# console in development. EMAIL_USE_TLS is STARTTLS (port 587), EMAIL_USE_SSL implicit TLS (465): one or neither.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
# Seconds a worker waits on the SMTP server before the delivery counts as failed (and is retried later).
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="azureml-portal@localhost")
# Microsoft Teams: the admins' channel (an incoming webhook, https://); empty leaves Teams off. A team's own
# channel is set in the Django admin (Team channels).
TEAMS_WEBHOOK_URL = env.str("TEAMS_WEBHOOK_URL", default="")
TEAMS_TIMEOUT = env.float("TEAMS_TIMEOUT", default=10.0)
# The portal's address as people reach it: the links in mails and cards are absolute.
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Delivery gives up after this many attempts (retried after 1, 2, 4 ... minutes, at most an hour apart).
NOTIFICATION_MAX_ATTEMPTS = env.int("NOTIFICATION_MAX_ATTEMPTS", default=10)

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Audit exports: workers write them, the web serves them to their requester, so in production this
    # is a volume (or a cloud storage backend) both reach.
    "exports": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": env.str("EXPORTS_DIR", default=str(VAR_DIR / "exports"))},
    },
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}


# Queues: RQ on Redis. JSON, never pickle, so a job carries ids and nothing executable.
def _running_demos_redis() -> str:
    """The embedded Redis of a demo running from this directory (``var/demo-redis``: its URL and process id),
    so that commands run beside ``manage.py demo`` queue to it; empty when no demo runs."""
    try:
        url, pid = (VAR_DIR / "demo-redis").read_text(encoding="utf-8").split()
        os.kill(int(pid), 0)  # raises when no such process runs
    except (OSError, ValueError):
        return ""
    return url


REDIS_URL = env.str("REDIS_URL", default="") or _running_demos_redis() or "redis://127.0.0.1:6379/0"
RQ_QUEUES = {
    "provisioning": {
        "URL": REDIS_URL,
        "DEFAULT_TIMEOUT": 3600,
        "SERIALIZER": "rq.serializers.JSONSerializer",
    },
}
RQ_SHOW_ADMIN_LINK = False
# ARM's write limit per subscription (a token bucket of 200 refilled 10 per second): every worker draws from
# one budget per subscription in the queue's Redis, kept below Azure's bucket for the portal's own margin.
# ARM_WRITE_BURST=0 turns the budget off.
ARM_WRITES_PER_SECOND = env.float("ARM_WRITES_PER_SECOND", default=10.0)
ARM_WRITE_BURST = env.int("ARM_WRITE_BURST", default=150)
# While writes queue for that budget, a role assignment leaves this many tokens to the others (resources and
# template deployments, which later steps wait on) for up to 90 s, then queues like them. 0 turns it off.
ARM_GRANT_SPARE = env.int("ARM_GRANT_SPARE", default=10)
# ARM's read limit (250, refilled 25 per second) likewise: the long-running operations' polls of many runs at
# once wait their turn. Below Azure's refill, for the polls azure-ai-ml sends from a client the budget cannot
# reach (its template deployment's status). ARM_READ_BURST=0 turns it off.
ARM_READS_PER_SECOND = env.float("ARM_READS_PER_SECOND", default=20.0)
ARM_READ_BURST = env.int("ARM_READ_BURST", default=200)
# /readyz: a provisioning worker's heartbeat must be this recent (an idle RQ worker beats every ~7 minutes).
READY_WORKER_SECONDS = env.int("READY_WORKER_SECONDS", default=600)
# /metrics answers Prometheus with this bearer token; empty: metrics are off (404).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# A worker's claim on a run lasts this long without a heartbeat; the sweeper re-enqueues a run whose
# lease expired (its worker died). Tests shorten both so a killed worker's run resumes quickly.
PROVISIONING_LEASE_SECONDS = env.int("PROVISIONING_LEASE_SECONDS", default=30)
PROVISIONING_HEARTBEAT_SECONDS = env.float("PROVISIONING_HEARTBEAT_SECONDS", default=5.0)
# How often the scheduler queues the reconcile of every managed workspace with Azure (drift).
RECONCILE_INTERVAL_MINUTES = env.float("RECONCILE_INTERVAL_MINUTES", default=30.0)
# Quota increase requests: the most cores one may ask a VM family's (or low-priority) limit to be.
QUOTA_REQUEST_MAX_CORES = env.int("QUOTA_REQUEST_MAX_CORES", default=10_000)
# Workers: python manage.py rqworker provisioning --with-scheduler --serializer rq.serializers.JSONSerializer
# The portal enqueues after its own commits (transaction.on_commit), so django-rq sends at once:
# deferring to a commit (its default) would hide a Redis error from the code that handles it.
RQ = {"WORKER_CLASS": "provisioning.worker.PortalWorker", "COMMIT_MODE": "auto"}

# Sessions and cookies.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
SECURE = not DEBUG
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=SECURE)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=SECURE)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=SECURE)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if SECURE else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=SECURE)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
BEHIND_TLS_PROXY = env.bool("BEHIND_TLS_PROXY", default=False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content Security Policy: everything is served by the portal itself; no inline script.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF],
        "style-src": [csp.SELF],
        "img-src": [csp.SELF, "data:"],
        "connect-src": [csp.SELF],
        "font-src": [csp.SELF],
        "frame-ancestors": [csp.NONE],
        "form-action": [csp.SELF],
        "base-uri": [csp.NONE],
        "object-src": [csp.NONE],
    },
}

# Logs: JSON lines in production (LOG_FORMAT=json, the default without DEBUG), plain text in development;
# each line carries the web request's id, or the run and step, and Azure's correlation id (portal/log_context.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "portal.log_context.JsonLines",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(run)s %(step)s %(correlation_id)s",
        },
    },
    "filters": {
        "without_query_strings": {"()": "portal.log_filters.WithoutQueryStrings"},
        "context": {"()": "portal.log_context.ContextFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # The development server's request lines, without query strings (the Entra callback's code).
        "django.server": {
            "handlers": ["console"],
            "level": "INFO",
            "propagate": False,
            "filters": ["without_query_strings"],
        },
        # azure-core's HTTP logging prints headers; keep it quiet whatever LOG_LEVEL says.
        "azure": {"level": "WARNING"},
        # MSAL logs the authorization code and the PKCE verifier at DEBUG.
        "msal": {"level": "WARNING"},
        # django-axes logs every successful sign-in's reset at INFO; the portal's audit records sign-ins.
        "axes": {"level": "WARNING"},
    },
}

# The portal's own defaults.
PORTAL_NAME = env.str("PORTAL_NAME", default="AzureML Self-Service Portal")

# Azure: endpoints are settings so the same code runs against public Azure, sovereign clouds and the
# local stand-in. TLS trust follows REQUESTS_CA_BUNDLE. Only the provisioning workers talk to Azure.
AZURE_ARM_ENDPOINT = env.str("AZURE_ARM_ENDPOINT", default="https://management.azure.com").rstrip("/")
AZURE_AUTHORITY_HOST = env.str("AZURE_AUTHORITY_HOST", default="https://login.microsoftonline.com").rstrip(
    "/"
)
GRAPH_ENDPOINT = env.str("GRAPH_ENDPOINT", default="https://graph.microsoft.com").rstrip("/")
# Where the audit page links Azure objects (https://portal.azure.us, https://portal.azure.cn in sovereign clouds).
AZURE_PORTAL_URL = env.str("AZURE_PORTAL_URL", default="https://portal.azure.com").rstrip("/")
# Worker credential: "managed_identity", "workload_identity" or "client_secret" (AZURE_TENANT_ID,
# AZURE_CLIENT_ID, AZURE_CLIENT_SECRET). Developer credentials (Azure CLI, VS Code) are never used.
AZURE_CREDENTIAL = env.str("AZURE_CREDENTIAL", default="client_secret")
AZURE_TENANT_ID = env.str("AZURE_TENANT_ID", default="")
AZURE_CLIENT_ID = env.str("AZURE_CLIENT_ID", default="")
AZURE_CLIENT_SECRET = env.str("AZURE_CLIENT_SECRET", default="")
# True only for the local stand-in: MSAL must not ask login.microsoftonline.com about a loopback authority.
AZURE_DISABLE_INSTANCE_DISCOVERY = env.bool("AZURE_DISABLE_INSTANCE_DISCOVERY", default=False)

# Sign-in with Microsoft Entra ID (AUTH_MODE=entra): the portal's own app registration, not the
# worker's identity. The authority is the tenant itself: "common" and "organizations" would let any
# tenant's users in. ENTRA_REDIRECT_URI pins the callback URL (as registered) when the portal sits behind
# a proxy; otherwise it is built from the request. Instance discovery is switched off only for the
# local stand-in (MSAL would ask login.microsoftonline.com about a loopback authority).
ENTRA_TENANT_ID = env.str("ENTRA_TENANT_ID", default="").strip().lower()
ENTRA_CLIENT_ID = env.str("ENTRA_CLIENT_ID", default="")
ENTRA_CLIENT_SECRET = env.str("ENTRA_CLIENT_SECRET", default="")
ENTRA_AUTHORITY_HOST = env.str("ENTRA_AUTHORITY_HOST", default=AZURE_AUTHORITY_HOST).rstrip("/")
ENTRA_REDIRECT_URI = env.str("ENTRA_REDIRECT_URI", default="")
ENTRA_POST_LOGOUT_REDIRECT_URI = env.str("ENTRA_POST_LOGOUT_REDIRECT_URI", default="")
ENTRA_DISABLE_INSTANCE_DISCOVERY = env.bool("ENTRA_DISABLE_INSTANCE_DISCOVERY", default=False)
# The REST API accepts Entra ID access tokens for the portal's app registration: the scope it exposes
# ("Expose an API": api://{client id}/access_as_user) and, when its application id URI is not the default
# api://{client id}, that URI (the audience of v1.0 access tokens).
ENTRA_API_SCOPE = env.str("ENTRA_API_SCOPE", default="access_as_user")
ENTRA_API_AUDIENCE = env.str("ENTRA_API_AUDIENCE", default="")
# Personal access tokens for scripts: how long one may last, and how many live ones a person may hold.
API_TOKEN_MAX_DAYS = env.int("API_TOKEN_MAX_DAYS", default=365)
API_TOKEN_MAX_LIVE = env.int("API_TOKEN_MAX_LIVE", default=20)
if AUTH_MODE == "entra":
    from accounts.entra import config_problems

    _problems = config_problems(
        tenant_id=ENTRA_TENANT_ID, client_id=ENTRA_CLIENT_ID, client_secret=ENTRA_CLIENT_SECRET
    )
    if _problems:
        raise ImproperlyConfigured("AUTH_MODE=entra: " + "; ".join(_problems))
    if SESSION_ENGINE.endswith("signed_cookies"):
        # The sign-in flow (state, nonce, PKCE verifier) must stay on the server.
        raise ImproperlyConfigured("AUTH_MODE=entra needs a server-side session engine, not signed cookies.")

# The REST API (/api/v1/): bearer tokens (personal access tokens, Entra ID access tokens) or the session
# (the documentation page, with DRF's CSRF check); JSON only; errors carry the forms' problem list.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api_auth.BearerAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["provisioning.api.permissions.HoldsPersona"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "provisioning.api.pagination.NewestFirst",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "provisioning.api.errors.handle",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "AzureML self-service portal API",
    "DESCRIPTION": (
        "Requests for AzureML workspaces, clusters and access, their approval and provisioning; workspaces, "
        "capacity, the audit trail and my access. Authenticate with a personal access token (made on your "
        "profile page) or an Entra ID access token for the portal's API, in the header 'Authorization: Bearer' followed by the token."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1/",
    # Swagger UI's files come from drf-spectacular-sidecar, served as the portal's static files (no CDN).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}
