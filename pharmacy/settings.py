"""Settings, read from the environment (django-environ).

Defaults are safe for local development: SQLite in the project folder, emails written to
``var/emails/``, Celery tasks run in-process when no ``REDIS_URL`` is given, localstripe-free
Stripe keys left empty. Production sets the variables listed in docs/settings.md ("Production").
"""

from decimal import Decimal
from pathlib import Path

import django.forms
import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# One switch for a real deployment: secure defaults (HTTPS only, HSTS, secure cookies, hashed
# static files, persistent database connections, JSON logs) and no insecure fallbacks. Each
# setting it changes can still be overridden by its own variable. See docs/settings.md ("Production").
PRODUCTION = env.bool("PRODUCTION", default=False)
if PRODUCTION:
    SECRET_KEY = env("SECRET_KEY")  # required: no default in production
else:
    SECRET_KEY = env(
        "SECRET_KEY",
        default="django-insecure-local-development-only-never-use-in-production",
    )
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.forms",
    "pharmacy.admin_apps.PharmacyAdminConfig",  # django.contrib.admin, its site asks for the second factor
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.sitemaps",
    "django.contrib.humanize",
    "djmoney",
    "simple_history",
    "import_export",
    "django_htmx",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "accounts",
    "catalog",
    "cart",
    "orders",
    "checkout",
    "prescriptions",
    "salestax",
    "discounts",
    "notifications",
    "payments",
    "pharmacy.apps.PharmacyConfig",  # deployment checks, log plumbing
    "dbbackup",  # encrypted database backups (pharmacy/backups.py, docs/operations.md)
    "django_prometheus",  # request rate, latency and errors per view (pharmacy/metrics.py)
]

MIDDLEWARE = [
    # First and last: times every request, counts responses and exceptions per view (Prometheus).
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "pharmacy.middleware.RequestIDMiddleware",
    # Bad input is a 400 with a reason, before any view or query sees it.
    "pharmacy.middleware.RejectNulBytesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Staff pages (/admin/, /staff/, prescription files) only after the second factor.
    "accounts.middleware.StaffSecondFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "pharmacy.urls"
WSGI_APPLICATION = "pharmacy.wsgi.application"

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
                "pharmacy.context_processors.pharmacy",
                "cart.context_processors.cart",
                # Last: placeholders instead of per-visitor values while a page is cached.
                "catalog.page_cache.context_processor",
            ],
        },
    },
]

# Form widgets through Django's own Jinja2 widget templates (django/forms/jinja2): the checkout's
# ~60-option state list is ~180 widget-template includes, cheaper through Jinja2 than through the
# template language (docs/performance.md). This engine comes first but holds only Django's form templates; pages
# and the admin's widget templates (which include the form templates, hence "django.forms" in
# INSTALLED_APPS) stay Django templates.
TEMPLATES.insert(
    0,
    {
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [Path(django.forms.__file__).resolve().parent / "jinja2"],
        "APP_DIRS": False,
        "OPTIONS": {"autoescape": True},
    },
)
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"

# The bodies of the checkout and cart pages (the form, the order summary, the prescription step,
# the cart's lines) in Jinja2 through Django's own backend: their hottest markup, cheaper to render
# than with the template language (docs/performance.md, "Checkout and cart: where the time goes").
# Their templates live under templates/jinja2/ and are asked for by this engine's name; base.html
# and every other page stay Django templates.
TEMPLATES.append(
    {
        "NAME": "pages",
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates" / "jinja2"],
        "APP_DIRS": False,
        "OPTIONS": {"autoescape": True, "environment": "catalog.jinja2_env.environment"},
    }
)

# --- Database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
# Persistent connections in production (one per gunicorn worker), checked before reuse.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60 if PRODUCTION else 0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool(
    "DATABASE_PREPARED_STATEMENTS", default=True
):
    # Parameters bound by the server, so psycopg prepares a query on a connection's sixth run of
    # it and PostgreSQL stops planning the pages' repeated joins afresh (the cart's lines query
    # took longer to plan than to run; docs/performance.md). Django leaves this off because
    # PgBouncer in transaction mode can't keep prepared statements: set the variable to 0 there.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True, prepare_threshold=5
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The zero-setup demo: wait for the write lock instead of failing when the worker and
    # the web process write at once.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Accounts -------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # allauth's backend: the email address is the login, case-insensitively.
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "accounts:dashboard"
LOGOUT_REDIRECT_URL = "catalog:home"

# django-allauth (docs/accounts.md): email as the login, verified before the first sign-in, the
# same answer whether or not an address has an account, every email through the outbox.
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
# Sign-up does the same work for a taken and a new address (accounts.auth_forms).
ACCOUNT_FORMS = {"signup": "accounts.auth_forms.SignupForm"}
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS = 3
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_EMAIL_NOTIFICATIONS = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_EMAIL_SUBJECT_PREFIX = ""
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if PRODUCTION else "http"
# Rate limits (allauth's, one mechanism). "key" is chosen by accounts.adapter: for failed
# sign-ins it is the pair (account, client address) plus the account's password generation, so
# a stranger's failures lock only the pair and a password reset unlocks it.
LOGIN_FAILURES_PER_ACCOUNT_AND_ADDRESS = env.int(
    "LOGIN_FAILURES_PER_ACCOUNT_AND_ADDRESS", default=5
)
LOGIN_LOCK_MINUTES = env.int("LOGIN_LOCK_MINUTES", default=30)
LOGIN_FAILURES_PER_ADDRESS_PER_MINUTE = env.int("LOGIN_FAILURES_PER_ADDRESS_PER_MINUTE", default=10)
ACCOUNT_RATE_LIMITS = {
    # Failed sign-ins (accounts.adapter.AccountAdapter.pre_authenticate): the (account, address)
    # pair is locked for LOGIN_LOCK_MINUTES after LOGIN_FAILURES_PER_ACCOUNT_AND_ADDRESS; an
    # address failing for many accounts is slowed down to LOGIN_FAILURES_PER_ADDRESS_PER_MINUTE.
    "login_failed": f"{LOGIN_FAILURES_PER_ACCOUNT_AND_ADDRESS}/{LOGIN_LOCK_MINUTES}m/key",
    "login_failed_address": f"{LOGIN_FAILURES_PER_ADDRESS_PER_MINUTE}/m/ip",
    "login": "30/m/ip",
    "signup": "10/h/ip",
    # Reset requests per client (429) and reset emails per address (beyond it: nothing is sent,
    # the page says the same thing; see accounts.views.PasswordResetView).
    "reset_password": "20/h/ip",
    "reset_password_email": env("RESET_EMAILS_PER_ADDRESS", default="3/h/key"),
    "reset_password_from_key": "20/m/ip",
    # Verification emails: one per address every 3 minutes, at most 10 an hour per client.
    "confirm_email": "1/3m/key,10/h/ip",
    "change_password": "5/m/user",
    "manage_email": "10/m/user",
    "reauthenticate": "10/m/user",
}
# The client address: REMOTE_ADDR, or, only behind the load balancer (BEHIND_PROXY), the entry
# that many hops from the right of X-Forwarded-For (allauth's own parsing; docs/settings.md).
ALLAUTH_TRUSTED_PROXY_COUNT = (
    env.int("TRUSTED_PROXY_COUNT", default=1) if env.bool("BEHIND_PROXY", default=PRODUCTION) else 0
)
# Staff: a second factor (TOTP with recovery codes, or a security key / passkey) before any staff page.
MFA_ADAPTER = "accounts.adapter.MFAAdapter"
# Each TOTP code is accepted once, remembered in the database (accounts.totp_codes).
MFA_FORMS = {
    "authenticate": "accounts.auth_forms.AuthenticateForm",
    "reauthenticate": "accounts.auth_forms.ReauthenticateForm",
    "activate_totp": "accounts.auth_forms.ActivateTOTPForm",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
# WebAuthn needs HTTPS; the local demo (http://127.0.0.1) is let through only with DEBUG on.
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = DEBUG
MFA_TOTP_ISSUER = env("MFA_TOTP_ISSUER", default="Riverside Pharmacy")
MFA_TOTP_TOLERANCE = 1
STAFF_SECOND_FACTOR_PATHS = ("/admin/", "/staff/", "/prescriptions/")
# Orders and prescription records outlive a closed account for this long (pharmacy law).
PHARMACY_RECORD_RETENTION_YEARS = env.int("PHARMACY_RECORD_RETENTION_YEARS", default=10)

# --- Internationalisation, money ------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="America/New_York")
# English only, no translations: Django skips its translation machinery (tests that need it turn
# it on: tests/cart/test_presentation.py).
USE_I18N = False
USE_TZ = True
CURRENCIES = ("USD",)
DEFAULT_CURRENCY = "USD"
CURRENCY_CODE = "USD"

# --- Static and media -----------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            # WhiteNoise's CompressedManifestStaticFilesStorage, each URL worked out once (issue #17).
            "pharmacy.static_storage.RememberingManifestStaticFilesStorage"
            # Hashed, compressed names need `collectstatic` first, so only where it is run.
            if env.bool("STATIC_MANIFEST", default=PRODUCTION)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
FIXTURE_DIRS = [BASE_DIR / "fixtures"]
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")
# Prescriptions never live under MEDIA_ROOT: they are served only through a permission check.
PRIVATE_MEDIA_ROOT = env.path("PRIVATE_MEDIA_ROOT", default=VAR_DIR / "private")
PRESCRIPTION_MAX_UPLOAD_BYTES = env.int("PRESCRIPTION_MAX_UPLOAD_BYTES", default=10 * 1024 * 1024)

# --- Cache and sessions ---------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
# Redis is a helper, never a single point of failure: a cache call waits at most these many
# seconds; after a failure Redis is left alone for REDIS_RETRY_AFTER_SECONDS and the default
# cache answers from this process's memory meanwhile (pharmacy/cache.py says why: allauth's rate
# limits must keep counting). Sessions are cached_db: the database holds every session, Redis
# only speeds reads up. See docs/security.md ("Redis down").
REDIS_SOCKET_CONNECT_TIMEOUT = env.float("REDIS_SOCKET_CONNECT_TIMEOUT", default=0.3)
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=0.3)
REDIS_CACHE_OPTIONS = {
    "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_CONNECT_TIMEOUT,
    "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
    "RETRY_AFTER_SECONDS": env.float("REDIS_RETRY_AFTER_SECONDS", default=5.0),
}


def redis_caches(url: str, *, key_prefix: str = "pharmacy") -> dict:
    """The cache aliases on Redis at ``url`` (tests point them at a dead Redis the same way)."""
    backend = "pharmacy.cache.RedisWithLocalFallback"
    return {
        "default": {
            "BACKEND": backend,
            "LOCATION": url,
            "OPTIONS": REDIS_CACHE_OPTIONS,
            "KEY_PREFIX": key_prefix,
        },
        # Catalog pages must agree across servers (a price saved on one retires the page on all):
        # no local stand-in, so during an outage they are rendered afresh instead of cached.
        "pages": {
            "BACKEND": backend,
            "LOCATION": url,
            "OPTIONS": {**REDIS_CACHE_OPTIONS, "LOCAL_FALLBACK": False},
            "KEY_PREFIX": f"{key_prefix}:pages",
        },
    }


if REDIS_URL:
    CACHES = redis_caches(
        env("CACHE_REDIS_URL", default=REDIS_URL),
        key_prefix=env("CACHE_KEY_PREFIX", default="pharmacy"),
    )
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    SESSION_ENGINE = "django.contrib.sessions.backends.db"

# Whole catalog pages in that cache (catalog/page_cache.py): retired on every catalog write;
# this lifetime is only a safety net.
CATALOG_PAGE_CACHE = env.bool("CATALOG_PAGE_CACHE", default=True)
CATALOG_PAGE_CACHE_ALIAS = "pages" if "pages" in CACHES else "default"
CATALOG_PAGE_CACHE_SECONDS = env.int("CATALOG_PAGE_CACHE_SECONDS", default=600)

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 90
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Handing a task to the broker from a web request (pharmacy.celery.publish_bounded): at most this
# long to connect and to hear back, one try; if it fails the outbox row stays queued for the
# periodic sweep. The worker keeps Celery's own patient reconnection.
CELERY_PUBLISH_TIMEOUT = env.float("CELERY_PUBLISH_TIMEOUT", default=0.5)
CELERY_BEAT_SCHEDULE: dict = {}
# Keep Django's LOGGING (JSON lines, request ids) in the worker instead of Celery's own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = TIME_ZONE

# --- Email ----------------------------------------------------------------------------------
EMAIL_FILE_PATH = env.path("EMAIL_FILE_PATH", default=VAR_DIR / "emails")
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.filebased.EmailBackend")
EMAIL_URL = env("EMAIL_URL", default="")
if EMAIL_URL:
    vars().update(env.email_url("EMAIL_URL"))
# An SMTP server that accepts and never answers must not hold a worker past its soft time limit:
# the send fails after this many seconds and the outbox retries it later.
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=10.0)
# A send that fails for a reason that may pass (server unreachable, timeout, a 4xx answer) is tried
# again by the sweep below: after a minute, doubling to at most an hour between tries, 30 tries in
# all (a little over a day). A 5xx refusal or a bad address fails the email at once.
EMAIL_RETRY_FIRST_SECONDS = env.int("EMAIL_RETRY_FIRST_SECONDS", default=60)
EMAIL_RETRY_MAX_SECONDS = env.int("EMAIL_RETRY_MAX_SECONDS", default=3600)
EMAIL_MAX_ATTEMPTS = env.int("EMAIL_MAX_ATTEMPTS", default=30)
# Attachments the outbox makes at send time, by name (notifications stores only the name and an
# id, never the file): the receipt PDF of a paid order (docs/receipts.md).
EMAIL_ATTACHMENT_RENDERERS = {"order_receipt_pdf": "orders.receipts.receipt_pdf_attachment"}
ANYMAIL = env.dict("ANYMAIL", default={})
DEFAULT_FROM_EMAIL = env(
    "DEFAULT_FROM_EMAIL", default="Riverside Pharmacy <orders@pharmacy.example>"
)
PHARMACY_STAFF_EMAIL = env("PHARMACY_STAFF_EMAIL", default="pharmacist@pharmacy.example")
# The outbox (notifications app): hand rows Celery lost back to it. The orders app warns staff
# about card holds that are about to lapse (Stripe keeps a manual-capture hold for 7 days).
CELERY_BEAT_SCHEDULE["notifications-requeue-stale-emails"] = {
    "task": "notifications.requeue_stale_emails",
    "schedule": 60.0,  # one indexed query; an email whose hand-off failed goes within ~2 minutes
}
CELERY_BEAT_SCHEDULE["notifications-failed-emails-digest"] = {
    "task": "notifications.failed_emails_digest",
    "schedule": 3600.0,  # staff hear of an email that could not be sent within the hour
}
CELERY_BEAT_SCHEDULE["orders-expiring-holds-digest"] = {
    "task": "orders.expiring_holds_digest",
    "schedule": 3600.0,
}
AUTHORISATION_WARNING_HOURS = env.int("AUTHORISATION_WARNING_HOURS", default=24)
# Checkout prefills the prescription step from the customer's saved patient details. Accounts sit
# above prescriptions, so prescriptions read them through this function (empty: no prefill).
PATIENT_PROFILE_LOOKUP = "accounts.services.patient_profile_for"
# Orders never import prescriptions (they sit above): checkout, placement, capture, claiming a
# guest order and the order page reach them through the interface orders defines
# (orders/prescription_step.py). Empty: the shop refuses prescription items.
ORDERS_PRESCRIPTION_STEP = "prescriptions.checkout_step.PrescriptionStep"

# --- Stripe ---------------------------------------------------------------------------------
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", default="")
# Empty means Stripe itself; the demo and the tests point this at localstripe.
STRIPE_API_BASE = env("STRIPE_API_BASE", default="")
STRIPE_JS_URL = env("STRIPE_JS_URL", default="https://js.stripe.com/v3/")
# Each Stripe call waits at most this long per attempt (connect, then each read) and is retried
# at most this many times on a network failure (same idempotency key). Worst case for one call:
# (1 + retries) × timeout + ~0.5 s back-off = 8.5 s with the defaults, under GUNICORN_TIMEOUT (30).
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=4.0)
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=1)
# How long Stripe keeps a manual-capture card hold (7 days for online card payments). A
# prescription order still in review after this is canceled and the customer told
# (prescriptions.decisions.prescriptions_lapse_expired); the staff digest warns a day before.
# Only lower it for a processor with shorter holds; raising it would capture expired holds.
STRIPE_AUTHORISATION_VALIDITY_HOURS = env.int("STRIPE_AUTHORISATION_VALIDITY_HOURS", default=7 * 24)
# Payments: catch up on lost webhooks every 5 minutes; cancel unpaid orders every 10.
CELERY_BEAT_SCHEDULE["orders-reconcile-pending-payments"] = {
    "task": "orders.reconcile_pending_payments",
    "schedule": 300.0,
}
CELERY_BEAT_SCHEDULE["orders-expire-unpaid-orders"] = {
    "task": "orders.expire_unpaid_orders",
    "schedule": 600.0,
}
# Auto-refill (issue 25, docs/autorefill.md): the notice goes out this many days before each due
# date; a consent lasts this many days; the job sends notices and places due refills every hour
# (each due date once, whatever the number of runs). AUTOREFILL_RENEWAL_REQUEST: the renewal request
# service called when refills run out (not importable yet, or "": none; the patient is told).
AUTOREFILL_NOTICE_DAYS = env.int("AUTOREFILL_NOTICE_DAYS", default=3)
AUTOREFILL_CONSENT_DAYS = env.int("AUTOREFILL_CONSENT_DAYS", default=365)
AUTOREFILL_RENEWAL_REQUEST = env(
    "AUTOREFILL_RENEWAL_REQUEST", default="prescriptions.renewals.renewal_request_start"
)
CELERY_BEAT_SCHEDULE["prescriptions-autorefill"] = {
    "task": "prescriptions.run_autorefills",
    "schedule": 3600.0,
}
# Webhook events whose processing failed or whose task was lost: queued again (orders/webhooks.py).
CELERY_BEAT_SCHEDULE["orders-retry-stripe-events"] = {
    "task": "orders.retry_stripe_events",
    "schedule": 300.0,
}
# Prescription orders whose 7-day card hold lapsed before review: cancel and tell the customer.
CELERY_BEAT_SCHEDULE["prescriptions-lapse-expired-prescription-holds"] = {
    "task": "prescriptions.lapse_expired_prescription_holds",
    "schedule": 900.0,
}

# --- The pharmacy ---------------------------------------------------------------------------
PHARMACY_NAME = env("PHARMACY_NAME", default="Riverside Pharmacy")
PHARMACY_LICENCE_NUMBER = env("PHARMACY_LICENCE_NUMBER", default="PHY-000000 (demo)")
PHARMACIST_IN_CHARGE = env("PHARMACIST_IN_CHARGE", default="Dana Whitfield, PharmD (demo)")
PHARMACY_PHONE = env("PHARMACY_PHONE", default="+1 555 0100")
PHARMACY_EMAIL = env("PHARMACY_EMAIL", default="care@pharmacy.example")
PHARMACY_ADDRESS = env("PHARMACY_ADDRESS", default="100 River Street, Albany, NY 12207")
# US states the pharmacy is licensed to ship to.
PHARMACY_LICENSED_STATES = env.list(
    "PHARMACY_LICENSED_STATES",
    default=[
        "NY",
        "NJ",
        "PA",
        "CT",
        "MA",
        "VT",
        "NH",
        "ME",
        "RI",
        "DE",
        "MD",
        "OH",
        "FL",
        "CA",
        "TX",
        "IL",
        "WA",
    ],
)
PRESCRIPTION_MINIMUM_AGE = env.int("PRESCRIPTION_MINIMUM_AGE", default=18)

# --- Cart and checkout ----------------------------------------------------------------------
CART_MAX_PACKAGES_PER_LINE = env.int("CART_MAX_PACKAGES_PER_LINE", default=10)
CART_ANONYMOUS_TTL_DAYS = env.int("CART_ANONYMOUS_TTL_DAYS", default=30)
SHIPPING_FLAT_RATE = Decimal(env("SHIPPING_FLAT_RATE", default="9.95"))
FREE_SHIPPING_THRESHOLD = Decimal(env("FREE_SHIPPING_THRESHOLD", default="150.00"))
ORDER_UNPAID_EXPIRY_MINUTES = env.int("ORDER_UNPAID_EXPIRY_MINUTES", default=60)
# How long the signed link in an order email opens the order page without signing in. It stands in
# for a password on a page with health data, and emails live for years in mailboxes, forwards and
# backups: short, so an old email opens nothing. Every later email about the order has a fresh link.
ORDER_LINK_MAX_AGE_DAYS = env.int("ORDER_LINK_MAX_AGE_DAYS", default=7)

# --- Security -------------------------------------------------------------------------------
# PRODUCTION=1 turns each of these on; the variable of the same name overrides it either way.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
# Load balancers probe over plain HTTP; the health endpoints answer them instead of redirecting.
# So may Prometheus, scraping a web process directly inside the private network (docs/operations.md).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=PRODUCTION)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=PRODUCTION)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool(
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", default=bool(SECURE_HSTS_SECONDS)
)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=PRODUCTION)
# Trust X-Forwarded-Proto only behind a proxy that sets it (and strips it from clients).
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_PROXY", default=PRODUCTION) else None
)
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp): our own origin, plus Stripe.js and nothing else third-party.
# Inline <script>/<style> need the per-request nonce: <script nonce="{{ request.csp_nonce }}">.
# When STRIPE_JS_URL / STRIPE_API_BASE point elsewhere (localstripe in the demo), that origin is
# allowed too, derived from the settings rather than listed by hand.
from urllib.parse import urlsplit

from csp.constants import NONCE, NONE, SELF


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


_STRIPE_JS_ORIGINS = sorted({"https://js.stripe.com"} | {o for o in [_origin(STRIPE_JS_URL)] if o})
_STRIPE_API_ORIGINS = sorted(
    {"https://api.stripe.com"}
    | {o for o in [_origin(STRIPE_API_BASE), _origin(STRIPE_JS_URL)] if o}
    - {"https://js.stripe.com"}
)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE, *_STRIPE_JS_ORIGINS],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF, *_STRIPE_API_ORIGINS],
        "frame-src": [*_STRIPE_JS_ORIGINS, "https://hooks.stripe.com"],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [SELF],
        "object-src": [NONE],
    },
}

# --- Logging --------------------------------------------------------------------------------
# Plain lines for people in development, JSON lines (LOG_FORMAT=json) for log shippers. Every
# record carries the request id (pharmacy/logging.py), also in Celery tasks the request queued.
# bench/: a trivial view (/bench/ceiling/) measuring this deployment's ceiling; off unless set.
BENCH_CEILING = env.bool("BENCH_CEILING", default=False)
LOG_FORMAT = env("LOG_FORMAT", default="json" if PRODUCTION else "plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "pharmacy.logging.RequestIDFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "pharmacy.logging.JSONFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Prescriptions on file and refills (issue #16) -------------------------------------------
# A prescription on file is valid this many days from the date written unless the pharmacist
# records another expiry; a refill is "too soon" before this share of the last fill's supply is
# used; reminders go out when the supply runs out within this many days.
PRESCRIPTION_VALIDITY_DAYS = env.int("PRESCRIPTION_VALIDITY_DAYS", default=365)
REFILL_TOO_SOON_FRACTION = env.float("REFILL_TOO_SOON_FRACTION", default=0.75)
REFILL_REMINDER_DAYS = env.int("REFILL_REMINDER_DAYS", default=7)
CELERY_BEAT_SCHEDULE["prescriptions-refill-reminders"] = {
    "task": "prescriptions.send_refill_reminders",
    "schedule": 6 * 3600.0,
}

# --- Operations: backups, metrics, error reports (docs/operations.md) ------------------------
# Backups (pharmacy/backups.py): the database through django-dbbackup (pg_dump's custom format,
# restored with pg_restore), the private and public media folders as one tar archive, each
# encrypted for BACKUP_GPG_RECIPIENT (a public key in the server's keyring; the private key lives
# elsewhere) and written to BACKUP_DIR. Backups older than BACKUP_KEEP_DAYS are deleted after each
# run, the newest pair always kept. deploy/systemd/pharmacy-backup.timer runs it every night.
BACKUP_DIR = env.path("BACKUP_DIR", default=VAR_DIR / "backups")
BACKUP_KEEP_DAYS = env.int("BACKUP_KEEP_DAYS", default=30)
BACKUP_GPG_RECIPIENT = env("BACKUP_GPG_RECIPIENT", default="")
STORAGES["dbbackup"] = {
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {
        "location": str(BACKUP_DIR),
        "file_permissions_mode": 0o600,
        "directory_permissions_mode": 0o700,
    },
}
# The restored objects belong to whoever restores (the shop's database user on the new server).
DBBACKUP_CONNECTORS = {
    "default": {
        "CONNECTOR": "dbbackup.db.postgresql.PgDumpBinaryConnector",
        "PG_OPTIONS": "--no-owner --no-privileges",
    }
}
DBBACKUP_GPG_RECIPIENT = BACKUP_GPG_RECIPIENT or None
# The key is named by the operator on this server; no web of trust to consult for it.
DBBACKUP_GPG_ALWAYS_TRUST = True
DBBACKUP_SEND_EMAIL = False  # a failed backup fails its systemd unit (and shows in the journal)
DBBACKUP_HOSTNAME = env("BACKUP_SERVER_NAME", default="pharmacy")

# Metrics (pharmacy/metrics.py): /metrics answers only a bearer token (METRICS_TOKEN) or a client
# address in METRICS_ALLOWED_NETWORKS; anyone else gets 404. Empty both: closed to everyone.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])
# How long the Celery queue length may wait for Redis before it is reported as unknown (-1).
METRICS_REDIS_TIMEOUT = env.float("METRICS_REDIS_TIMEOUT", default=0.3)
# And each gauge query for the database (the four are indexed and take milliseconds).
METRICS_STATEMENT_TIMEOUT = env.float("METRICS_STATEMENT_TIMEOUT", default=2.0)
# The admin index's gauges turn to the warning colour past these (and the suggested alerts in
# docs/operations.md use the same figures).
GAUGE_THRESHOLDS = {
    "review_queue_length": env.int("ALERT_REVIEW_QUEUE_LENGTH", default=20),
    "review_oldest_hours": env.float("ALERT_REVIEW_OLDEST_HOURS", default=24),
    "holds_lapsing": env.int("ALERT_HOLDS_LAPSING", default=1),
    "emails_unsent": env.int("ALERT_EMAILS_UNSENT", default=20),
    "emails_oldest_unsent_minutes": env.float("ALERT_EMAILS_OLDEST_UNSENT_MINUTES", default=30),
    "emails_failed": env.int("ALERT_EMAILS_FAILED", default=1),
    "stripe_events_unprocessed": env.int("ALERT_STRIPE_EVENTS_UNPROCESSED", default=5),
    "celery_queue_length": env.int("ALERT_CELERY_QUEUE_LENGTH", default=100),
}

# Error reports (pharmacy/error_reports.py): sent to Sentry only when SENTRY_DSN is set, scrubbed
# of bodies, cookies, headers, query strings and local variables (no health data leaves).
SENTRY_DSN = env("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env(
    "SENTRY_ENVIRONMENT", default="production" if PRODUCTION else "development"
)
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0)
if SENTRY_DSN:
    from pharmacy.error_reports import sentry_init

    sentry_init(
        dsn=SENTRY_DSN, environment=SENTRY_ENVIRONMENT, traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE
    )
