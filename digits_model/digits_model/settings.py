"""Django settings for the digit prediction service.

This is the only module that reads the environment; every variable has a safe default so
that ``make run`` works with nothing configured (SQLite, a local artifact folder). The
README's configuration table lists them all.
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent  # digits_model/, where manage.py lives
REPO_DIR = BASE_DIR.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# --- Core ------------------------------------------------------------------------------------
DEBUG = env_bool("DEBUG")
VAR_DIR = Path(os.environ.get("DIGITS_VAR_DIR", REPO_DIR / "var"))


def _secret_key() -> str:
    """SECRET_KEY from the environment, else from a key file made by ``make run`` / the image."""
    key = os.environ.get("SECRET_KEY", "").strip()
    if key:
        return key
    key_file = Path(os.environ.get("DIGITS_SECRET_KEY_FILE", VAR_DIR / "secret_key"))
    if key_file.is_file():
        return key_file.read_text().strip()
    if DEBUG:
        return "insecure-debug-only-" + secrets.token_urlsafe(32)
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Set the SECRET_KEY environment variable, or write a random key "
        f"to {key_file} (make run does this for you), or set DEBUG=1 for local development."
    )


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "rest_framework",
    "predicciones",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "predicciones.middleware.RequestContextMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "digits_model.urls"
WSGI_APPLICATION = "digits_model.wsgi.application"
APPEND_SLASH = False  # the API's routes accept both /predict and /predict/

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

# --- Database ------------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "").strip()
if not DATABASE_URL:
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # the embedded default needs its folder
    DATABASE_URL = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=600)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several gunicorn workers write at once: WAL lets readers run beside the writer, the busy
    # timeout makes writers queue instead of failing, IMMEDIATE takes the write lock up front
    # (no deadlock-prone lock upgrades), and synchronous=FULL makes each commit durable.
    DATABASES["default"]["CONN_MAX_AGE"] = 0 if DATABASE_URL.endswith(":memory:") else 600
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
        "PRAGMA busy_timeout=30000;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Uploads -------------------------------------------------------------------------------------
DIGITS_MAX_UPLOAD_BYTES = env_int("DIGITS_MAX_UPLOAD_BYTES", 10 * 1024 * 1024)
DIGITS_MAX_IMAGE_PIXELS = env_int("DIGITS_MAX_IMAGE_PIXELS", 40_000_000)
# Whole request body: the image plus a little form overhead. Checked from Content-Length
# before the body is read (RequestContextMiddleware), and again by Django while parsing.
DATA_UPLOAD_MAX_MEMORY_SIZE = DIGITS_MAX_UPLOAD_BYTES + 64 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = DIGITS_MAX_UPLOAD_BYTES + 64 * 1024
# Uploads stay in memory (they are small, by the limit above): nothing a client sends is
# ever written to disk.
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.MemoryFileUploadHandler"]
DATA_UPLOAD_MAX_NUMBER_FIELDS = 100
DATA_UPLOAD_MAX_NUMBER_FILES = 5

# --- Models and artifacts -------------------------------------------------------------------------
DIGITS_DEFAULT_MODEL = os.environ.get("DIGITS_DEFAULT_MODEL", "clf.pickle")
DIGITS_SHIPPED_MODEL_PATH = BASE_DIR / "model" / "clf.pickle"
DIGITS_ARTIFACTS_DIR = Path(os.environ.get("DIGITS_ARTIFACTS_DIR", VAR_DIR / "artifacts"))
DIGITS_S3_BUCKET = os.environ.get("DIGITS_S3_BUCKET", "").strip()
DIGITS_S3_PREFIX = os.environ.get("DIGITS_S3_PREFIX", "digits").strip().strip("/")
# How long a worker trusts its cached view of which version is live (seconds).
DIGITS_ROUTING_TTL = env_float("DIGITS_ROUTING_TTL", 1.0)
DIGITS_ADMIN_TOKEN = os.environ.get("DIGITS_ADMIN_TOKEN", "").strip()

# --- Retraining and rollout --------------------------------------------------------------------
# New labelled samples needed before a retrain (with drift), and without drift.
DIGITS_RETRAIN_MIN_SAMPLES = env_int("DIGITS_RETRAIN_MIN_SAMPLES", 200)
DIGITS_RETRAIN_MIN_SAMPLES_WITHOUT_DRIFT = env_int("DIGITS_RETRAIN_MIN_SAMPLES_WITHOUT_DRIFT", 1000)
DIGITS_RETRAIN_COOLDOWN_HOURS = env_float("DIGITS_RETRAIN_COOLDOWN_HOURS", 24.0)
# Gate: accuracy gain required, and the most recall any class may lose.
DIGITS_GATE_MIN_IMPROVEMENT = env_float("DIGITS_GATE_MIN_IMPROVEMENT", 0.005)
DIGITS_GATE_MAX_CLASS_DROP = env_float("DIGITS_GATE_MAX_CLASS_DROP", 0.02)
# Share of labelled feedback kept for validation (never trained on), by a hash of the query id.
DIGITS_FEEDBACK_HOLDOUT_PERCENT = env_int("DIGITS_FEEDBACK_HOLDOUT_PERCENT", 20)
# Rollout of a gated candidate by run_pipeline, and the canary review's minimum traffic.
DIGITS_CANARY_PERCENT = env_int("DIGITS_CANARY_PERCENT", 10)
DIGITS_CANARY_MIN_REQUESTS = env_int("DIGITS_CANARY_MIN_REQUESTS", 200)

# --- Drift checks (manage.py check_drift; the rule is documented in predicciones/ml/drift.py) ---
# A feature drifted when its normalised W1 (W1 / max(training std, 2)) reaches this.
DIGITS_DRIFT_FEATURE_THRESHOLD = env_float("DIGITS_DRIFT_FEATURE_THRESHOLD", 0.3)
# Share of drifted features from which the severity is "warning" / "critical".
DIGITS_DRIFT_WARNING_SHARE = env_float("DIGITS_DRIFT_WARNING_SHARE", 0.25)
DIGITS_DRIFT_CRITICAL_SHARE = env_float("DIGITS_DRIFT_CRITICAL_SHARE", 0.5)
# Fewer live predictions than this in the window: status "insufficient_data", no alarm.
DIGITS_DRIFT_MIN_SAMPLES = env_int("DIGITS_DRIFT_MIN_SAMPLES", 100)
# Window when check_drift gets neither --last nor --since: the last N predictions.
DIGITS_DRIFT_WINDOW = env_int("DIGITS_DRIFT_WINDOW", 1000)

# --- API -----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "predicciones.errors.api_exception_handler",
}

# --- Static files, security headers --------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("DIGITS_BEHIND_TLS_PROXY") else None
)

# --- Logging -------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DIGITS_LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
