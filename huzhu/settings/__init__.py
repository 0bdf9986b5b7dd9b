"""Django settings for huzhu, read from the environment.

Secrets never live in the repository: in production every key comes from the environment;
in demo mode (``HUZHU_DEMO=1``) the keys are generated once into ``var/`` (see ``huzhu.core.keys``).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from huzhu.core.keys import load_or_create_demo_keys

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("HUZHU_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("HUZHU_DEBUG")
# huzhu.settings.test imports this package first, so it is recognised by its module name too.
TESTING = env_bool("HUZHU_TESTING") or os.environ.get("DJANGO_SETTINGS_MODULE", "").endswith(
    "settings.test"
)
# Demo mode: asked for explicitly, or implied on a machine where `make demo` generated its keys
# and no production secret is configured (so `.venv/bin/huzhu token create …` works after it).
# Never implied in tests: `make demo` then `make test` on one machine must test production rules.
DEMO_MODE = env_bool("HUZHU_DEMO") or (
    not TESTING and "HUZHU_SECRET_KEY" not in os.environ and (VAR_DIR / "keys.json").exists()
)

if DEMO_MODE or TESTING:
    _keys = load_or_create_demo_keys(VAR_DIR, ephemeral=TESTING)
    SECRET_KEY = _keys["secret_key"]
    HUZHU_FIELD_KEYS = _keys["field_keys"]
    HUZHU_FIELD_KEY_CURRENT = _keys["field_key_current"]
    HUZHU_BLIND_INDEX_KEY = _keys["blind_index_key"]
    HUZHU_SIGNING_KEY = _keys["signing_key"]
else:
    try:
        SECRET_KEY = os.environ["HUZHU_SECRET_KEY"]
        # "k1:<base64 32 bytes>,k2:<base64 32 bytes>"; the current one encrypts, all decrypt.
        HUZHU_FIELD_KEYS = os.environ["HUZHU_FIELD_KEYS"]
        HUZHU_FIELD_KEY_CURRENT = os.environ["HUZHU_FIELD_KEY_CURRENT"]
        HUZHU_BLIND_INDEX_KEY = os.environ["HUZHU_BLIND_INDEX_KEY"]
        HUZHU_SIGNING_KEY = os.environ["HUZHU_SIGNING_KEY"]
    except KeyError as missing:  # pragma: no cover - configuration error path
        raise ImproperlyConfigured(
            f"环境变量 {missing.args[0]} 未设置（生产模式必须提供全部密钥，见 README「配置」）"
        ) from None

ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("HUZHU_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("HUZHU_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_tasks",
    "django_tasks_db",
    "huzhu.core",
    "huzhu.orgs",
    "huzhu.members",
    "huzhu.plans",
    "huzhu.enrollment",
    "huzhu.jobs",
    "huzhu.ledger",
    "huzhu.contributions",
    "huzhu.claims",
    "huzhu.portal",
    "huzhu.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "huzhu.web.middleware.SessionPolicyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "huzhu.core.middleware.RequestContextMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "huzhu.urls"
WSGI_APPLICATION = "huzhu.wsgi.application"
AUTH_USER_MODEL = "orgs.User"
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:dashboard"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
                "huzhu.web.context_processors.platform",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("HUZHU_DATABASE_URL", f"sqlite:///{VAR_DIR / 'huzhu.sqlite3'}")
_db = dj_database_url.parse(DATABASE_URL, conn_max_age=0)
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + IMMEDIATE transactions + synchronous=FULL: committed data survives a crash (S17)
    # and writers queue instead of failing with "database is locked" on upgrade.
    _db["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
            "PRAGMA busy_timeout=30000;"
        ),
    }
else:
    _db["CONN_MAX_AGE"] = int(os.environ.get("HUZHU_DB_CONN_MAX_AGE", "60"))
    _db["CONN_HEALTH_CHECKS"] = True
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- passwords and login (S1, S2, S3) ----------------------------------------------------------
PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "huzhu.orgs.passwords.CharacterClassValidator"},
    {"NAME": "huzhu.orgs.passwords.NoPersonalDataValidator"},
    {"NAME": "huzhu.orgs.passwords.HistoryValidator"},
]
HUZHU_PASSWORD_MAX_AGE_DAYS = 90
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = 0.5  # hours: 30 minutes
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "huzhu.web.views.lockout_response"
AXES_VERBOSE = False
# Lockout is per account (S2: "lock the account"); per-IP lockout would shut out a whole union
# office behind one NAT address, so axes.W006 is silenced on purpose.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
HUZHU_OTP_REQUIRED = not DEMO_MODE or env_bool("HUZHU_DEMO_OTP")

# --- sessions (S4) ---------------------------------------------------------------------------
SESSION_ENGINE = "django.contrib.sessions.backends.db"
HUZHU_STAFF_IDLE_SECONDS = 15 * 60
HUZHU_STAFF_ABSOLUTE_SECONDS = 8 * 3600
HUZHU_MEMBER_IDLE_SECONDS = 30 * 60
HUZHU_MEMBER_ABSOLUTE_SECONDS = 12 * 3600
SESSION_COOKIE_AGE = HUZHU_STAFF_ABSOLUTE_SECONDS
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
_secure = env_bool("HUZHU_SECURE_COOKIES", default=not (DEMO_MODE or TESTING or DEBUG))
SESSION_COOKIE_SECURE = _secure
CSRF_COOKIE_SECURE = _secure
SECURE_SSL_REDIRECT = env_bool("HUZHU_SSL_REDIRECT", default=_secure)
SECURE_HSTS_SECONDS = 31536000 if _secure else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = _secure
SECURE_HSTS_PRELOAD = _secure
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Reverse proxies (addresses or CIDR networks, comma-separated) whose X-Forwarded-For the partner
# API believes; empty: only REMOTE_ADDR counts (huzhu.claims.partners.client_ip).
HUZHU_TRUSTED_PROXIES = [
    p.strip() for p in os.environ.get("HUZHU_TRUSTED_PROXIES", "").split(",") if p.strip()
]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- content security policy with nonces (S18) -------------------------------------------------
from csp.constants import NONCE, NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [SELF],
        "object-src": [NONE],
    }
}

# --- i18n --------------------------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文")]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
# Bootstrap is served from the xstatic-bootstrap package itself (no CDN, no copy in the repo).
import xstatic.pkg.bootstrap as _xstatic_bootstrap  # noqa: E402

STATICFILES_DIRS: list[tuple[str, str]] = [("vendor/bootstrap", _xstatic_bootstrap.BASE_DIR)]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG or DEMO_MODE or TESTING
MEDIA_ROOT = VAR_DIR / "media"

# --- logging: never a plaintext identifier (S9) ------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_pii": {"()": "huzhu.core.logging.MaskPiiFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["mask_pii"],
            "formatter": "plain",
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("HUZHU_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

HUZHU_MEMBER_PAGE_SIZE = 20
# Claim documents (PDF, JPEG, PNG): the largest file accepted, in bytes (huzhu.claims.manual).
HUZHU_CLAIM_DOCUMENT_MAX_BYTES = int(os.environ.get("HUZHU_CLAIM_DOCUMENT_MAX_BYTES", 10 * 2**20))

# --- background jobs: django-tasks with its database backend (no extra server needed) -------------
# `huzhu worker` runs the queue; tests use the immediate backend.
TASKS = {
    "default": {
        "BACKEND": os.environ.get("HUZHU_TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
    }
}

# --- the finance e-receipt platform (财政电子票据平台; docs/finance-platform.md) ---
# Without a URL, issued receipts wait in the upload outbox (nothing is reported as uploaded).
HUZHU_FINANCE_PLATFORM_URL = os.environ.get("HUZHU_FINANCE_PLATFORM_URL", "").strip()
HUZHU_FINANCE_PLATFORM_APPID = os.environ.get("HUZHU_FINANCE_PLATFORM_APPID", "").strip()
HUZHU_FINANCE_PLATFORM_KEY = os.environ.get("HUZHU_FINANCE_PLATFORM_KEY", "")
HUZHU_FINANCE_PLATFORM_TIMEOUT = float(os.environ.get("HUZHU_FINANCE_PLATFORM_TIMEOUT", "10"))
HUZHU_FINANCE_PLATFORM_MAX_ATTEMPTS = int(
    os.environ.get("HUZHU_FINANCE_PLATFORM_MAX_ATTEMPTS", "8")
)
# A province whose platform speaks another dialect plugs in its own client class.
HUZHU_FINANCE_PLATFORM_CLIENT = os.environ.get(
    "HUZHU_FINANCE_PLATFORM_CLIENT", "huzhu.contributions.receipt_upload.HmacXmlPlatformClient"
)
