"""Dream Pixel settings: one file, read from the environment.

With nothing set it runs on the embedded defaults (SQLite, local media files, local-memory
cache, django-q2's ORM broker, console email, the local preview renderer). Every variable is
listed with a comment in deploy/production.env.example.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from core.env import env_bool, env_choice, env_float, env_int, env_is_production, env_list, env_str
from core.signing import signing_credentials_problem
from core.storages import default_storage_settings

BASE_DIR = Path(__file__).resolve().parent.parent

# "production" turns on every security setting and refuses to start without a SECRET_KEY.
DREAMPIXEL_ENV = env_choice("DREAMPIXEL_ENV", "development", ("development", "production"))
PRODUCTION = env_is_production()
DEBUG = env_bool("DEBUG", not PRODUCTION)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Production needs a long random SECRET_KEY in the environment "
            "(for example: python -c 'import secrets; print(secrets.token_urlsafe(50))')."
        )
    SECRET_KEY = "dev-only-insecure-key-dreampixel-do-not-use-in-production-0123456789"  # noqa: S105
elif PRODUCTION and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure-")):
    # Django's own deploy check only warns; a guessable key signs sessions and reset links.
    raise ImproperlyConfigured(
        "SECRET_KEY is too weak: production needs at least 50 random characters "
        "(for example: python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS is not set: list the site's host names, comma-separated.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# The public address of the site, for links in emails and provider webhooks; empty in development
# (links then use the request's host, or the first name in ALLOWED_HOSTS: core/links.py).
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL").rstrip("/")
# The port `make dev` serves the site on, for links made without a request in development: the
# Makefile passes the web's PORT on to every process (honcho gives each its own PORT).
DEV_SITE_PORT = env_int("DEV_SITE_PORT", 8000, minimum=1)

INSTALLED_APPS = [
    "core",
    "accounts",
    "billing",
    "generation",
    "operations",
    "operations.apps.AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.google",
    "allauth.mfa",
    "django_htmx",
    "template_partials",
    "django_q",
    "django_ratelimit",
    "csp",
]

MIDDLEWARE = [
    # Counts and times every request for /metrics, refused ones included (core/metrics.py).
    "core.metrics.RequestMetricsMiddleware",
    # Bodies over the limit (413) and NUL characters (400) are refused before anything reads them.
    "core.middleware.RequestGateMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "core.logging.RequestIdMiddleware",
    "core.outages.ServiceUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # A signed-in person's pages: Cache-Control: private, no-store.
    "core.middleware.PrivatePagesMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django_ratelimit.middleware.RatelimitMiddleware",
]

# Request bodies larger than this are refused with 413 before being read, except the photo
# uploads (one photo on the edit form, ten on a batch: core/middleware.py). nginx's
# client_max_body_size and the PaaS router should match (docs/security.md). [1 MB]
REQUEST_MAX_BYTES = env_int("REQUEST_MAX_BYTES", 1024 * 1024, minimum=64 * 1024)

ROOT_URLCONF = "dreampixel.urls"
WSGI_APPLICATION = "dreampixel.wsgi.application"

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
                "dreampixel.context_processors.site",
                "billing.context_processors.credits",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------
# DATABASE_URL (postgres://user:pass@host:5432/name) in production; a SQLite file otherwise.
if PRODUCTION and not env_str("DATABASE_URL"):
    raise ImproperlyConfigured(
        "DATABASE_URL is not set. Production runs on PostgreSQL (postgres://user:pass@host:5432/name), "
        "never on the development SQLite file."
    )
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        # Off unless asked for: the check is one more round trip (a SELECT 1) at the start of
        # every request that touches the database. Without it, a connection the server dropped
        # (a restart) fails one request in each process, and Django replaces it after that request.
        conn_health_checks=env_bool("DATABASE_CONN_HEALTH_CHECKS", False),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the dev server and the worker share the file.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Never ATOMIC_REQUESTS: it would hold a transaction across Stripe and provider calls.
ATOMIC_REQUESTS = False

# --- Cache, rate limits and the task queue ----------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    _cache = {
        "BACKEND": "core.cache.RedisCache",
        "LOCATION": REDIS_URL,
        # An unreachable Redis fails a request in seconds (a 503 page), never hangs it.
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        # Before every key, so that sites sharing one Redis (staging next to production, the
        # tests) keep apart; Q_CLUSTER_NAME does the same for the queue. [empty]
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX"),
    }
else:
    _cache = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "dreampixel"}
CACHES = {"default": _cache}

# Sessions are read from the cache (Redis in production) and written through to the
# database: one query less on every signed-in request, nothing lost when the cache restarts.
# core.sessions: signed-in pages keep working, from the database, while Redis is down.
SESSION_ENGINE = "core.sessions"
# The cache's copy of a session lives at most this long, then it is read from the database
# again: it bounds how long a session signed out while Redis was unreachable could come back
# with Redis (core/sessions.py). One database read per active session per interval. [300]
SESSION_CACHE_SECONDS = env_int("SESSION_CACHE_SECONDS", 300, minimum=10)

RATELIMIT_ENABLE = env_bool("RATELIMIT_ENABLE", True)
RATELIMIT_VIEW = "dreampixel.views.ratelimited"
# Every per-IP limit counts on core.clientip.client_ip: behind a load balancer set the
# number of proxies in front of gunicorn (and, better, the networks the nearest one connects
# from), and the client is read from the right end of X-Forwarded-For. docs/security.md has
# the values for a PaaS router, an AWS ALB and nginx.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)
TRUSTED_PROXY_NETWORKS = env_list("TRUSTED_PROXY_NETWORKS")
for _network in TRUSTED_PROXY_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"TRUSTED_PROXY_NETWORKS: {_network!r} is not an address or network (e.g. 10.0.0.0/8)."
        ) from None
RATELIMIT_IP_META_KEY = "core.clientip.client_ip"
RATELIMIT_LOGIN = env_str("RATELIMIT_LOGIN", "10/m")
RATELIMIT_SIGNUP = env_str("RATELIMIT_SIGNUP", "5/m")
RATELIMIT_JOBS_PER_USER = env_str("RATELIMIT_JOBS_PER_USER", "10/m")
RATELIMIT_JOBS_PER_IP = env_str("RATELIMIT_JOBS_PER_IP", "20/m")
# Requests that carry photos (an edit, a batch of up to ten), apart from the job limits above.
RATELIMIT_UPLOADS_PER_USER = env_str("RATELIMIT_UPLOADS_PER_USER", "6/m")
RATELIMIT_UPLOADS_PER_IP = env_str("RATELIMIT_UPLOADS_PER_IP", "12/m")

SILENCED_SYSTEM_CHECKS = [
    # Django's own RedisCache works with django-ratelimit (atomic incr, shared between
    # processes); the library only vouches for django-redis by name.
    "django_ratelimit.W001",
]
if not REDIS_URL:
    if PRODUCTION:
        raise ImproperlyConfigured(
            "REDIS_URL is not set. Production needs Redis: rate limits only hold across "
            "processes on a shared cache, and it is the task queue's broker."
        )
    # One development process: local memory counts correctly. Several processes need REDIS_URL.
    SILENCED_SYSTEM_CHECKS.append("django_ratelimit.E003")

Q_CLUSTER = {
    # Also the Redis list the tasks wait in: clusters with one name share one queue.
    "name": env_str("Q_CLUSTER_NAME", "dreampixel"),
    "workers": env_int("Q_WORKERS", 2, minimum=1),
    "timeout": env_int("Q_TIMEOUT", 900, minimum=10),
    # Must exceed timeout; a task whose worker died comes back after this many seconds.
    "retry": env_int("Q_TIMEOUT", 900, minimum=10) + 60,
    "max_attempts": 3,
    # How many tasks a cluster takes from the broker ahead of its workers. The Redis broker
    # never delivers a taken task again, so a killed cluster loses these until the sweeper
    # sends their jobs again; few means the other clusters run them instead.
    "queue_limit": env_int("Q_QUEUE_LIMIT", env_int("Q_WORKERS", 2, minimum=1), minimum=1),
    "save_limit": 500,
    "catch_up": False,
    "poll": 0.1,
    "label": "Task queue",
}
# supervise_qcluster (the Procfile's worker) restarts a cluster when no task finished for
# this long although the queue took its heartbeat tasks.
QCLUSTER_STALL_SECONDS = env_float("QCLUSTER_STALL_SECONDS", 60.0, minimum=1.0)
# An idle supervised cluster gets a no-op heartbeat task this often.
QCLUSTER_HEARTBEAT_SECONDS = env_float("QCLUSTER_HEARTBEAT_SECONDS", 5.0, minimum=0.1)
# SIGTERM: the cluster may finish its tasks this long, then it is killed (under the platform's grace).
QCLUSTER_STOP_GRACE_SECONDS = env_float("QCLUSTER_STOP_GRACE_SECONDS", 20.0, minimum=0.0)
# A stalled cluster cannot stop cleanly: it is killed after this long.
QCLUSTER_RESTART_GRACE_SECONDS = env_float("QCLUSTER_RESTART_GRACE_SECONDS", 5.0, minimum=0.0)
# The name a supervised cluster reports under (admin home); empty: $DYNO, else host:pid.
WORKER_NAME = env_str("WORKER_NAME")
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
    # django-q2's Redis broker, plus a list per supervised cluster of the tasks it has taken, so
    # that a restart hands them back at once (core/taskqueue.py, operations/supervisor.py).
    Q_CLUSTER["broker_class"] = "core.taskqueue.TrackedRedis"
else:
    Q_CLUSTER["orm"] = "default"

# --- Monitoring ---------------------------------------------------------------------------
# /metrics (Prometheus) and the deep health check /readyz/deep are not public: they answer a
# request that carries METRICS_TOKEN as a bearer token, or that comes from a network of
# METRICS_ALLOWED_NETWORKS (the client's address, read behind TRUSTED_PROXY_COUNT proxies).
# With neither set they answer 404. Development allows this machine.
METRICS_TOKEN = env_str("METRICS_TOKEN")
if PRODUCTION and METRICS_TOKEN and len(METRICS_TOKEN) < 32:
    raise ImproperlyConfigured(
        "METRICS_TOKEN is too short: use at least 32 random characters "
        "(python -c 'import secrets; print(secrets.token_urlsafe(32))'), or leave it empty."
    )
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", [] if PRODUCTION else ["127.0.0.0/8", "::1/128"])
for _network in METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"METRICS_ALLOWED_NETWORKS: {_network!r} is not an address or network (e.g. 10.0.0.0/8)."
        ) from None
# The dead-man's switch: the scheduler calls this address every minute (healthchecks.io and its
# peers), so when the workers or their scheduler stop, the silence pages someone. Empty: off.
HEARTBEAT_URL = env_str("HEARTBEAT_URL")

# --- Files -------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or BASE_DIR / "media")

AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
_default_storage = default_storage_settings(
    bucket=AWS_STORAGE_BUCKET_NAME,
    region=env_str("AWS_S3_REGION_NAME"),
    endpoint_url=env_str("AWS_S3_ENDPOINT_URL"),
    access_key=env_str("AWS_ACCESS_KEY_ID"),
    secret_key=env_str("AWS_SECRET_ACCESS_KEY"),
    custom_domain=env_str("AWS_S3_CUSTOM_DOMAIN"),
    addressing_style=env_str("AWS_S3_ADDRESSING_STYLE"),
    url_expire=env_int("AWS_QUERYSTRING_EXPIRE", 3600, minimum=60),
)

STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Payments (Stripe) -------------------------------------------------------------------
# Payments are on when the secret key is set; without it the billing page says so and staff
# grant credits by hand.
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
# Signs the webhooks Stripe sends to /webhooks/stripe/ (whsec_...).
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
# Stripe's API address; only for tests or a proxy. Empty: api.stripe.com.
STRIPE_API_BASE = env_str("STRIPE_API_BASE").rstrip("/")
# The local payments sandbox (`make dev` turns it on): the fake Stripe on loopback, with a
# checkout page and a test card, a portal, a dashboard with refunds, and webhooks sent back
# (fakes/sandbox.py, scripts/dev_payments.py). Nothing is charged. Production refuses it.
PAYMENTS_SANDBOX = env_bool("PAYMENTS_SANDBOX", False)
PAYMENTS_SANDBOX_URL = env_str("PAYMENTS_SANDBOX_URL", "http://127.0.0.1:8010").rstrip("/")
if PAYMENTS_SANDBOX:
    if PRODUCTION:
        raise ImproperlyConfigured(
            "PAYMENTS_SANDBOX is for `make dev` only: it takes pretend payments. Unset it in production."
        )
    STRIPE_SECRET_KEY = "sk_test_payments_sandbox"  # noqa: S105 (the sandbox's own, public on purpose)
    STRIPE_WEBHOOK_SECRET = "whsec_dreampixel_payments_sandbox"  # noqa: S105 (likewise)
    STRIPE_API_BASE = PAYMENTS_SANDBOX_URL
# How far back `reconcile` lists paid Checkout sessions and invoices from Stripe.
STRIPE_RECONCILE_WINDOW_HOURS = env_int("STRIPE_RECONCILE_WINDOW_HOURS", 72, minimum=1)
# Buy and portal POSTs per client address.
RATELIMIT_CHECKOUT = env_str("RATELIMIT_CHECKOUT", "10/m")

# --- Generation --------------------------------------------------------------------------
# One or more Replicate API tokens, comma-separated; requests rotate between them.
REPLICATE_API_TOKENS = env_list("REPLICATE_API_TOKENS") or env_list("REPLICATE_API_TOKEN")
REPLICATE_BASE_URL = env_str("REPLICATE_BASE_URL")  # empty: api.replicate.com
REPLICATE_TIMEOUT = env_int("REPLICATE_TIMEOUT", 30, minimum=1)
# Seconds Replicate may hold a create open, asked only for a model whose recent predictions
# finished within it (others give their worker back at once).
REPLICATE_CREATE_WAIT = env_int("REPLICATE_CREATE_WAIT", 5, minimum=1)
# Signs Replicate's webhooks; fetched from Replicate (and cached) when not set.
REPLICATE_WEBHOOK_SECRET = env_str("REPLICATE_WEBHOOK_SECRET")
REPLICATE_WEBHOOK_TOLERANCE = env_int("REPLICATE_WEBHOOK_TOLERANCE", 300, minimum=1)
# The local preview renderer is offered when there is no Replicate token, unless set.
LOCAL_RENDERER_ENABLED = env_bool("LOCAL_RENDERER_ENABLED", not REPLICATE_API_TOKENS)
LOCAL_RENDER_DELAY = env_int("LOCAL_RENDER_DELAY_MS", 0, minimum=0) / 1000
# Content Credentials (C2PA): every result is signed as made by AI, naming its model. The
# certificate chain (signing certificate first) and its private key, each PEM text or a file's
# path. Development and tests sign with a pair made at run time; production refuses to start
# without its own, or with a self-signed or the development one (docs/deployment.md).
C2PA_SIGNING_CERT = env_str("C2PA_SIGNING_CERT")
C2PA_SIGNING_KEY = env_str("C2PA_SIGNING_KEY")
# An RFC 3161 timestamp authority: signatures then stay valid after the certificate expires.
C2PA_TIMESTAMP_URL = env_str("C2PA_TIMESTAMP_URL")
if problem := signing_credentials_problem(C2PA_SIGNING_CERT, C2PA_SIGNING_KEY, production=PRODUCTION):
    raise ImproperlyConfigured(problem)
# A worker holds a running job for this long and renews it while it waits.
JOB_LEASE_SECONDS = env_int("JOB_LEASE_SECONDS", 60, minimum=5)
JOB_SWEEP_GRACE_SECONDS = env_int("JOB_SWEEP_GRACE_SECONDS", 30, minimum=0)
# A queued job whose task was lost (queue restart, killed cluster, failed enqueue) is sent
# again after this long; each job at most once per this interval.
JOB_REQUEUE_AFTER_SECONDS = env_int("JOB_REQUEUE_AFTER_SECONDS", 60, minimum=10)
# Without webhooks (no PUBLIC_BASE_URL) one poller checks every running prediction this often
# (a few list calls a pass), so a job finishes within about two intervals of its prediction.
JOB_POLL_INTERVAL = env_float("JOB_POLL_INTERVAL", 1.0, minimum=0.1)
JOB_POLL_BATCH = 2000  # running predictions looked at per pass, oldest first
JOB_POLL_GETS_PER_PASS = 20  # asked one by one per pass when the list does not show them
JOB_POLLER_RUN_SECONDS = 50  # one poller task's life; it enqueues its successor
JOB_POLLER_IDLE_SECONDS = 3.0  # a poller with nothing to poll waits this long before it ends
# A job that could not find out whether its create went through asks again after this long.
JOB_LOOK_AGAIN_SECONDS = 5
PROVIDER_MAX_RETRIES = env_int("PROVIDER_MAX_RETRIES", 4, minimum=0)
PROVIDER_RETRY_BASE_DELAY = 0.5
PROVIDER_POLL_INITIAL = 0.1
PROVIDER_POLL_MAX = 2.0
# How long shared caches (a CDN, a proxy) may keep a shared image or video: after a link is
# revoked or the job deleted, it lives on there at most this long. [60]
SHARED_MEDIA_MAX_AGE = env_int("SHARED_MEDIA_MAX_AGE", 60, minimum=0)
# Lifetime of the signed URLs our file view redirects to on S3.
FILE_URL_EXPIRE = env_int("FILE_URL_EXPIRE", 300, minimum=30)
# How long a provider may fetch a photo to edit through its signed URL (S3 only).
PROVIDER_PHOTO_URL_EXPIRE = 3600
# A person's photo is decoded and cleaned by the job's worker in a child process stopped after
# this many seconds, with this much memory (generation/uploads.py). [30, 2048 MB]
UPLOAD_PROCESS_SECONDS = env_float("UPLOAD_PROCESS_SECONDS", 30.0, minimum=0.1)
UPLOAD_PROCESS_MEMORY = env_int("UPLOAD_PROCESS_MEMORY_MB", 2048, minimum=256) * 1024 * 1024
# Staff alerts (admin home, and email to STAFF_EMAILS at most once an hour per alert).
ALERT_FAILURE_RATE = env_float("ALERT_FAILURE_RATE", 0.2, minimum=0.0, maximum=1.0)
ALERT_MIN_JOBS = env_int("ALERT_MIN_JOBS", 5, minimum=1)
ALERT_SLOW_JOB_SECONDS = env_int("ALERT_SLOW_JOB_SECONDS", 300, minimum=60)
DAILY_PROVIDER_BUDGET_USD = env_float("DAILY_PROVIDER_BUDGET_USD", 100.0, minimum=0.0)
# What `cleanup` keeps, in days.
CLEANUP_FAILED_AFTER_DAYS = env_int("CLEANUP_FAILED_AFTER_DAYS", 30, minimum=1)
CLEANUP_TASK_RESULTS_DAYS = env_int("CLEANUP_TASK_RESULTS_DAYS", 14, minimum=1)
WEBHOOK_RETENTION_DAYS = env_int("WEBHOOK_RETENTION_DAYS", 90, minimum=1)

# --- Accounts and sign-in ----------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",  # email and password (the dev sign-in, the admin)
    "allauth.account.auth_backends.AuthenticationBackend",  # allauth's: email codes, Google
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
# Sign-in lands where people create; the profile (with its delete button) is one click away.
LOGIN_REDIRECT_URL = "create"

# Email + password sign-in is on unless turned off; Google is on when its credentials are set.
EMAIL_LOGIN_ENABLED = env_bool("EMAIL_LOGIN_ENABLED", True)
GOOGLE_CLIENT_ID = env_str("GOOGLE_CLIENT_ID")
GOOGLE_CLIENT_SECRET = env_str("GOOGLE_CLIENT_SECRET")
GOOGLE_LOGIN_ENABLED = bool(GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET)
if not EMAIL_LOGIN_ENABLED and not GOOGLE_LOGIN_ENABLED:
    raise ImproperlyConfigured(
        "No way to sign in: EMAIL_LOGIN_ENABLED is off and GOOGLE_CLIENT_ID/GOOGLE_CLIENT_SECRET are not set."
    )

# Keys the hash a mailbox's signup bonus is remembered under (billing/mailbox.py); SECRET_KEY
# when empty. Set it before rotating SECRET_KEY, or every mailbox could collect the bonus again.
MAILBOX_HASH_KEY = env_str("MAILBOX_HASH_KEY")

ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
# allauth's forms with the site's own labels.
ACCOUNT_FORMS = {
    "login": "accounts.forms.SignInForm",
    "signup": "accounts.forms.SignUpForm",
    "reset_password": "accounts.forms.PasswordResetForm",
}
SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
# Free credits invite throwaway accounts: an email sign-up must verify its address first.
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_SESSION_REMEMBER = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Dream Pixel] "
# allauth's own limits, on the shared cache, keyed by the same client address as
# django-ratelimit (the adapter's get_client_ip). "key" is the account or the email address:
# these hold however many addresses an attacker has. django-ratelimit adds the plain per-IP
# POST limits on login and sign-up (dreampixel/urls.py). A refused request gets the 429 page.
ACCOUNT_RATE_LIMITS = {
    # Wrong passwords for one account, and wrong second-factor codes for one account (allauth's
    # TOTP and recovery-code forms count on this action too): after the fifth failure the
    # account's sign-in is locked for the window, even for the right password or code.
    "login_failed": env_str("RATELIMIT_LOGIN_FAILED", "10/m/ip,5/15m/key"),
    # Password-reset mails: per client address and per address asked for.
    "reset_password": env_str("RATELIMIT_PASSWORD_RESET", "5/m/ip,3/h/key"),
    "reset_password_from_key": "20/m/ip",
    "signup": "20/m/ip",
    "login": "30/m/ip",
}
# Google only (EMAIL_LOGIN_ENABLED off) is not allauth's SOCIALACCOUNT_ONLY: allauth refuses that
# with its MFA app and with mandatory email verification (system-check errors that stop `check`
# and `migrate`), and staff need the second factor. Instead the adapters close email sign-up and
# password sign-in to all but staff, and the sign-in page offers Google (accounts/adapters.py).
SOCIALACCOUNT_ONLY = False
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_PROVIDERS = {
    "google": {
        "SCOPE": ["profile", "email"],
        "AUTH_PARAMS": {"access_type": "online"},
        "OAUTH_PKCE_ENABLED": True,
        **(
            {"APPS": [{"client_id": GOOGLE_CLIENT_ID, "secret": GOOGLE_CLIENT_SECRET, "key": ""}]}
            if GOOGLE_LOGIN_ENABLED
            else {}
        ),
    }
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_ADAPTER = "accounts.adapters.MFAAdapter"
# Keys that encrypt the staff's TOTP secrets and recovery-code seeds in the database
# (accounts/mfa.py): Fernet keys, comma-separated, newest first. Production requires them;
# development derives one from SECRET_KEY. Rotation: docs/runbook.md.
MFA_ENCRYPTION_KEYS = env_list("MFA_ENCRYPTION_KEYS")
if not MFA_ENCRYPTION_KEYS:
    if PRODUCTION:
        raise ImproperlyConfigured(
            "MFA_ENCRYPTION_KEYS is not set. Production encrypts the staff's second-factor secrets with it "
            "(for example: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')."
        )
    MFA_ENCRYPTION_KEYS = [base64.urlsafe_b64encode(hashlib.sha256(b"mfa:" + SECRET_KEY.encode()).digest()).decode()]
for _key in MFA_ENCRYPTION_KEYS:
    try:
        Fernet(_key)
    except ValueError:
        raise ImproperlyConfigured(
            "MFA_ENCRYPTION_KEYS: each key must be a Fernet key (32 bytes, URL-safe base64, 44 characters)."
        ) from None

# Development prints mail to the console. Production must send it: the console would put every
# password-reset and sign-in link into the process logs. SMTP when EMAIL_HOST is set.
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "core.mail_console.EmailBackend",
)
if PRODUCTION and EMAIL_BACKEND.rsplit(".", 2)[-2] in ("console", "mail_console", "filebased", "locmem", "dummy"):
    raise ImproperlyConfigured(
        "EMAIL_HOST is not set (or EMAIL_BACKEND keeps mail in the process). Production sends "
        "password-reset and verification mail: set EMAIL_HOST and EMAIL_HOST_USER/"
        "EMAIL_HOST_PASSWORD for SMTP, or EMAIL_BACKEND to a sending backend."
    )
EMAIL_HOST = EMAIL_HOST or "localhost"
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Dream Pixel <hello@dreampixel.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
ADMINS = [("Staff", email) for email in env_list("STAFF_EMAILS")]

# --- Security ----------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^readyz/deep$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

_csp_media = ["https:"] if AWS_STORAGE_BUCKET_NAME else []
_csp = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "blob:", *_csp_media],
        "media-src": [SELF, "blob:", *_csp_media],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [
            SELF,
            "https://accounts.google.com",
            "https://checkout.stripe.com",
            *([PAYMENTS_SANDBOX_URL] if PAYMENTS_SANDBOX else []),
        ],
    }
}
if PRODUCTION:
    CONTENT_SECURITY_POLICY = _csp
else:
    # Django's debug pages use inline styles: only report in development.
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _csp

# --- The rest ----------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Structured logs: JSON lines in production (LOG_FORMAT=json), readable text in development.
# Every record carries request_id, user_id and job_id when there is one.
# gunicorn's logger reads it too, before these settings load (core.env.env_log_format).
LOG_FORMAT = env_choice("LOG_FORMAT", "json" if PRODUCTION else "text", ("json", "text"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "core.logging.ContextFilter"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
    },
    "formatters": {
        "text": {
            "format": "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s user=%(user_id)s job=%(job_id)s] %(message)s"
        },
        # The same JSON as gunicorn's access and error lines (core/access_log.py).
        "json": {"()": "core.logging.json_formatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]},
        "mail_admins": {
            "level": "ERROR",
            "filters": ["require_debug_false"],
            "class": "django.utils.log.AdminEmailHandler",
        },
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own lines reach the root's handler like every other: without this its default
        # console handler printed them a second time, unformatted, whenever DEBUG was on. Errors
        # still email STAFF_EMAILS, as Django's default does.
        "django": {"handlers": ["mail_admins"], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "werkzeug": {"level": "WARNING"},
    },
}

# Errors go to Sentry when SENTRY_DSN is set. django-q2 has no Sentry integration of its own:
# task failures reach Sentry through the logging integration (django-q logs them as errors).
SENTRY_DSN = env_str("SENTRY_DSN")
if SENTRY_DSN:
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        environment=DREAMPIXEL_ENV,
        integrations=[DjangoIntegration(), LoggingIntegration(event_level=logging.ERROR)],
        traces_sample_rate=env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0, minimum=0.0, maximum=1.0),
        send_default_pii=False,
    )
