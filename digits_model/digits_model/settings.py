"""Django settings for the digit prediction service.

This is the only module that reads the environment; every variable has a safe default so
that ``make run`` works with nothing configured (SQLite, a local artifact folder). The
README's configuration table lists them all.
"""

import contextlib
import math
import os
import re
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from predicciones.ml import drift as drift_rules
from predicciones.ml import gate as gate_rules

BASE_DIR = Path(__file__).resolve().parent.parent  # digits_model/, where manage.py lives
REPO_DIR = BASE_DIR.parent


class SettingError(ImproperlyConfigured):
    """A bad value of one environment variable, in one line: the variable, the value given and
    what is accepted. ``manage.py`` prints it and exits 2; gunicorn refuses to start with it."""


def bad_setting(name: str, value: str, accepted: str) -> SettingError:
    return SettingError(f"{name}={value!r} is not valid: expected {accepted}")


def env_str(name: str, default: str = "") -> str:
    """The variable's value, stripped; an empty value counts as unset (compose, k8s pass "")."""
    return os.environ.get(name, "").strip() or default


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise bad_setting(name, value, "1, true, yes, on or 0, false, no, off")


def _range_words(kind: str, low, high) -> str:
    if low is not None and high is not None:
        return f"{kind} from {low:g} to {high:g}"
    if low is not None:
        return f"{kind} >= {low:g}"
    return kind


def _env_number(name: str, default, parse, kind: str, low, high):
    """``parse`` of the environment variable, ``default`` when unset; a value ``parse``
    refuses, that is not finite or that is out of ``low``..``high`` stops the start."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = parse(value)
    except ValueError:
        number = math.nan
    if (
        not math.isfinite(number)
        or (low is not None and number < low)
        or (high is not None and number > high)
    ):
        raise bad_setting(name, value, _range_words(kind, low, high))
    return number


def env_int(name: str, default: int, *, low: int | None = None, high: int | None = None) -> int:
    return _env_number(name, default, int, "an integer", low, high)


def env_float(
    name: str, default: float, *, low: float | None = None, high: float | None = None
) -> float:
    return _env_number(name, default, float, "a number", low, high)


def env_choice(name: str, default: str, choices) -> str:
    value = env_str(name, default)
    if value.upper() not in {c.upper() for c in choices}:
        raise bad_setting(name, value, "one of " + ", ".join(choices))
    return value


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


#: Shortest admin token, API key or metrics token accepted: 16 random characters are about 96
#: bits, beyond guessing even without the throttle on failed attempts.
MIN_TOKEN_LENGTH = 16


def env_secret(name: str) -> str:
    """A token from the environment ("" when unset), refused when shorter than
    :data:`MIN_TOKEN_LENGTH` (the message never shows it)."""
    value = os.environ.get(name, "").strip()
    check_secret_length(name, [value] if value else [])
    return value


def env_secret_list(name: str) -> list[str]:
    """Comma-separated tokens, each refused when shorter than :data:`MIN_TOKEN_LENGTH`."""
    values = env_list(name, "")
    check_secret_length(name, values)
    return values


def check_secret_length(name: str, values: list[str]) -> None:
    for position, value in enumerate(values, 1):
        if len(value) < MIN_TOKEN_LENGTH:
            which = f"its entry {position} is" if len(values) > 1 else "it is"
            raise SettingError(
                f"{name} is too short: {which} {len(value)} characters, at least "
                f"{MIN_TOKEN_LENGTH} are needed (make one with: python3 -c "
                "'import secrets; print(secrets.token_urlsafe(32))')"
            )


def env_rate(name: str, default: str | None) -> str | None:
    """A DRF rate string ("60/min", "1000/hour"); None when it is "off" (or unset without a
    default)."""
    value = env_str(name, default or "")
    if not value or value.lower() == "off":
        return None
    if not re.fullmatch(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", value):
        raise bad_setting(name, value, "a rate like 60/min or 1000/hour (s, m, h, d)")
    return value


# --- Core ------------------------------------------------------------------------------------
DEBUG = env_bool("DEBUG")
# A relative DIGITS_VAR_DIR is taken from the repository's folder, like the default.
VAR_DIR = REPO_DIR / env_str("DIGITS_VAR_DIR", "var")
try:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
except OSError as exc:
    raise bad_setting(
        "DIGITS_VAR_DIR", str(VAR_DIR), f"a folder this user can create ({exc.strerror})"
    ) from None


def _secret_key() -> str:
    """SECRET_KEY from the environment, else from a key file made by ``make run`` / the image."""
    key = os.environ.get("SECRET_KEY", "").strip()
    if key:
        return key
    key_file = REPO_DIR / (env_str("DIGITS_SECRET_KEY_FILE") or VAR_DIR / "secret_key")
    if key_file.is_file():
        return key_file.read_text().strip()
    if DEBUG:
        return "insecure-debug-only-" + secrets.token_urlsafe(32)
    raise SettingError(
        "SECRET_KEY is not set. Set the SECRET_KEY environment variable, or write a random key "
        f"to {key_file} (make run and the container do this for you; DIGITS_SECRET_KEY_FILE "
        "names another file), or set DEBUG=1 for local development."
    )


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets served by us: the docs page works offline
    "predicciones",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files (the page's CSS/JS, Swagger UI) straight from gunicorn; before anything
    # that logs or counts, so asset requests stay out of the API's metrics.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "predicciones.middleware.RequestContextMiddleware",
    "predicciones.middleware.SecurityHeadersMiddleware",
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
DATABASE_URL = os.environ.get("DATABASE_URL", "").strip() or f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
_DATABASE_SCHEMES = ("postgres", "postgresql", "pgsql", "sqlite")
_scheme = DATABASE_URL.partition("://")[0] if "://" in DATABASE_URL else ""
try:
    if _scheme not in _DATABASE_SCHEMES:
        raise ValueError(_scheme)
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=600)}
except ValueError:
    # Name the scheme only: the rest of the URL may hold a password.
    raise SettingError(
        f"DATABASE_URL (scheme {_scheme or 'missing'!r}) is not valid: expected "
        "postgres://user:password@host:5432/name or sqlite:////absolute/path.sqlite3"
    ) from None


def _create_private(path: Path) -> None:
    """Create an empty file readable by its owner only, unless it exists.

    SQLite makes a new database file with the process's umask (0644 as a rule): readable by
    every local user, with the prediction log and the registry's digests in it. An empty file
    is an empty SQLite database, and SQLite gives its -wal and -shm files the database file's
    own permissions.
    """
    # It may exist (then it is left as it is), or the folder may be read-only or missing
    # (SQLite says so when it connects).
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


# SQLite's durability level (docs/performance.md, "Durability"). Either way a prediction's row
# is committed before its 200 and survives the crash, SIGKILL or OOM-kill of any service
# process. NORMAL (the default, with WAL) does not fsync each commit: a power cut or kernel
# crash may lose the last commits, never corrupting the file. FULL survives those too, at one
# fsync per prediction under SQLite's single write lock: ~4 ms on this project's test VM once
# the log has history, which caps the whole server near 300 predictions/s.
DIGITS_SQLITE_SYNCHRONOUS = env_choice(
    "DIGITS_SQLITE_SYNCHRONOUS", "NORMAL", ("NORMAL", "FULL", "EXTRA")
).upper()
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several gunicorn workers write at once: WAL lets readers run beside the writer, the busy
    # timeout makes writers queue instead of failing, IMMEDIATE takes the write lock up front
    # (no deadlock-prone lock upgrades).
    DATABASES["default"]["CONN_MAX_AGE"] = 0 if DATABASE_URL.endswith(":memory:") else 600
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; "
        f"PRAGMA synchronous={DIGITS_SQLITE_SYNCHRONOUS}; PRAGMA busy_timeout=30000;",
    }
    _name = str(DATABASES["default"]["NAME"])
    if _name and _name != ":memory:" and not _name.startswith("file:"):
        _create_private(Path(_name))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Group commit of the prediction log (predicciones/prediction_log/group_commit.py): one writer
# thread a worker commits the rows of concurrent requests together, at most this many rows a
# transaction, waiting at most this many milliseconds after the first for more (0: take what
# is queued, never wait). Each request is answered once its own row is committed. 1 row: no
# writer, each request commits its own row.
DIGITS_LOG_BATCH_ROWS = env_int("DIGITS_LOG_BATCH_ROWS", 64, low=1, high=10_000)
DIGITS_LOG_BATCH_WAIT_MS = env_float("DIGITS_LOG_BATCH_WAIT_MS", 0.0, low=0, high=1000)

# --- Uploads -------------------------------------------------------------------------------------
# A JPEG's decoding CPU grows with its bytes, at any scale: up to about 28 ms a MB for noise
# encoded at quality 60-80, so 4 MiB keeps the costliest near 120 ms (5 MiB, what AWS
# Rekognition accepts, would allow 150 ms). A 12 MP phone photo of a page is 1.5-4 MB.
DIGITS_MAX_UPLOAD_BYTES = env_int("DIGITS_MAX_UPLOAD_BYTES", 4 * 1024 * 1024, low=1)
# Pixel caps, from the image's header (predicciones/ml/decoding.py): a baseline JPEG is decoded
# at reduced scale; PNG, GIF, BMP, TIFF, WebP and progressive JPEG are decoded at full size, at
# several bytes and a few nanoseconds a pixel, so they get the lower cap. With the byte limit,
# they keep the costliest upload near 120 ms of CPU (docs/performance.md, "Decode cost").
DIGITS_MAX_IMAGE_PIXELS = env_int("DIGITS_MAX_IMAGE_PIXELS", 16_000_000, low=1)
DIGITS_MAX_FULL_DECODE_PIXELS = env_int("DIGITS_MAX_FULL_DECODE_PIXELS", 4_000_000, low=1)
# Large decodes (a megapixel or more at full size, 16 MP of JPEG, 2 MiB of data) one worker
# process runs at once; another waits up to DIGITS_DECODE_WAIT seconds for its turn, then gets
# 503 with Retry-After. Small uploads never wait.
DIGITS_DECODE_CONCURRENCY = env_int("DIGITS_DECODE_CONCURRENCY", 1, low=1)
DIGITS_DECODE_WAIT = env_float("DIGITS_DECODE_WAIT", 0.5, low=0)
# Threads per worker running /predict/'s work (API key, rate limit, decode, predict, the log
# row's commit) under the asgi worker; one computes while another waits on the database.
DIGITS_PREDICT_THREADS = env_int("DIGITS_PREDICT_THREADS", 2, low=1)
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
DIGITS_DEFAULT_MODEL = env_str("DIGITS_DEFAULT_MODEL", "clf.pickle")
DIGITS_SHIPPED_MODEL_PATH = BASE_DIR / "model" / "clf.pickle"
DIGITS_ARTIFACTS_DIR = Path(env_str("DIGITS_ARTIFACTS_DIR") or VAR_DIR / "artifacts")
DIGITS_S3_BUCKET = os.environ.get("DIGITS_S3_BUCKET", "").strip()
DIGITS_S3_PREFIX = env_str("DIGITS_S3_PREFIX", "digits").strip("/")
# How long a worker trusts its cached view of which version is live (seconds).
DIGITS_ROUTING_TTL = env_float("DIGITS_ROUTING_TTL", 1.0, low=0)
DIGITS_ADMIN_TOKEN = env_secret("DIGITS_ADMIN_TOKEN")

# --- Retraining and rollout --------------------------------------------------------------------
# New labelled samples needed before a retrain (with drift), and without drift.
DIGITS_RETRAIN_MIN_SAMPLES = env_int("DIGITS_RETRAIN_MIN_SAMPLES", 200, low=0)
DIGITS_RETRAIN_MIN_SAMPLES_WITHOUT_DRIFT = env_int(
    "DIGITS_RETRAIN_MIN_SAMPLES_WITHOUT_DRIFT", 1000, low=0
)
DIGITS_RETRAIN_COOLDOWN_HOURS = env_float("DIGITS_RETRAIN_COOLDOWN_HOURS", 24.0, low=0)
# Gate: accuracy gain required, and the most recall any class may lose.
DIGITS_GATE_MIN_IMPROVEMENT = env_float(
    "DIGITS_GATE_MIN_IMPROVEMENT", gate_rules.MIN_IMPROVEMENT, low=0, high=1
)
DIGITS_GATE_MAX_CLASS_DROP = env_float(
    "DIGITS_GATE_MAX_CLASS_DROP", gate_rules.MAX_CLASS_DROP, low=0, high=1
)
# Share of labelled feedback kept for validation (never trained on), chosen by a hash of the
# uploaded image's sha256 (so the same picture never lands on both sides). 40 % of 150 labels
# is about 60 rows, enough for the gate to judge on them alone (it needs 30); at 20 %, 150
# labels held out about 25 and the gate judged on every row, where they are lost.
DIGITS_FEEDBACK_HOLDOUT_PERCENT = env_int("DIGITS_FEEDBACK_HOLDOUT_PERCENT", 40, low=0, high=100)
# Most labels one untrusted source (a client address, an ordinary API key) contributes to the
# rows a retrain trains on (its latest ones); trusted keys' labels are not capped.
DIGITS_FEEDBACK_SOURCE_CAP = env_int("DIGITS_FEEDBACK_SOURCE_CAP", 50, low=0)
# Let run_pipeline roll out, and canary_review promote, a version trained on labels from
# untrusted sources (off: it is registered and waits for an operator's canary or promote).
DIGITS_ROLLOUT_UNTRUSTED_FEEDBACK = env_bool("DIGITS_ROLLOUT_UNTRUSTED_FEEDBACK")
# Rollout of a gated candidate by run_pipeline, and the canary review's minimum traffic.
DIGITS_CANARY_PERCENT = env_int("DIGITS_CANARY_PERCENT", 10, low=1, high=99)
DIGITS_CANARY_MIN_REQUESTS = env_int("DIGITS_CANARY_MIN_REQUESTS", 200, low=1)

# --- Drift checks (manage.py check_drift; the rule is documented in predicciones/ml/drift.py) ---
# A feature drifted when its normalised W1 (W1 / max(training std, 2)) reaches this.
DIGITS_DRIFT_FEATURE_THRESHOLD = env_float(
    "DIGITS_DRIFT_FEATURE_THRESHOLD", drift_rules.DEFAULT_THRESHOLDS.feature, low=0
)
# Share of drifted features from which the severity is "warning" / "critical".
DIGITS_DRIFT_WARNING_SHARE = env_float(
    "DIGITS_DRIFT_WARNING_SHARE", drift_rules.DEFAULT_THRESHOLDS.warning_share, low=0, high=1
)
DIGITS_DRIFT_CRITICAL_SHARE = env_float(
    "DIGITS_DRIFT_CRITICAL_SHARE", drift_rules.DEFAULT_THRESHOLDS.critical_share, low=0, high=1
)
# Fewer live predictions than this in the window: status "insufficient_data", no alarm.
DIGITS_DRIFT_MIN_SAMPLES = env_int(
    "DIGITS_DRIFT_MIN_SAMPLES", drift_rules.DEFAULT_THRESHOLDS.min_samples, low=1
)
# Window when check_drift gets neither --last nor --since: the last N predictions.
DIGITS_DRIFT_WINDOW = env_int("DIGITS_DRIFT_WINDOW", 1000, low=1)

# --- The prediction log's lifecycle (manage.py maintain: summaries, capture, retention) ---------
# Unlabelled log rows older than this many days are deleted once their hour's capture in the
# artifact store is checked; labelled rows (retraining data) stay.
DIGITS_LOG_RETENTION_DAYS = env_int("DIGITS_LOG_RETENTION_DAYS", 30, low=1)
# An hour of the log is closed (summarised, captured) once it is over by this many seconds.
DIGITS_LOG_GRACE_SECONDS = env_int("DIGITS_LOG_GRACE_SECONDS", 600, low=0)

# --- API -----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "predicciones.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "predicciones.exception_handler.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "predicciones.schema.AutoSchema",
    # The client address for rate limiting: the last N entries of X-Forwarded-For are trusted
    # proxies' (0: REMOTE_ADDR, for a server facing clients directly).
    "NUM_PROXIES": env_int("DIGITS_TRUSTED_PROXIES", 0, low=0),
    # JSON whatever Accept says, without DRF's per-request header parsing.
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "predicciones.negotiation.JSONOnlyContentNegotiation",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Predicción de Dígitos API",
    "DESCRIPTION": (
        "Reads a handwritten digit from an uploaded image. Every error answers "
        "`{status_code, query_id, error}` with a 4xx (or 503 when not ready)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,  # multipart file fields become `format: binary`
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "predicciones.schema.add_security",
    ],
}

# --- Optional API keys and rate limiting for /predict/ and /feedback/ (off by default) ----------
# Comma-separated keys, sent as `X-API-Key: <key>`; empty means the endpoints are open.
DIGITS_API_KEYS = env_secret_list("DIGITS_API_KEYS")
# Rate limit of /predict/; empty means no limit. Counted per API key when keys are on, else per
# client address, in the cache below.
DIGITS_PREDICT_RATE = env_rate("DIGITS_PREDICT_RATE", None)
# Keys whose labels are trusted: the operator's own labellers. The validation gate judges a
# retrained candidate on the base holdout plus held-out labels given with these keys only (see
# predicciones/provenance.py). Each is also accepted wherever an API key is asked for.
DIGITS_TRUSTED_API_KEYS = env_secret_list("DIGITS_TRUSTED_API_KEYS")
# /feedback/ answers 401 without one of the keys above or of DIGITS_API_KEYS, even when
# /predict/ is open: the production setting when retraining runs.
DIGITS_FEEDBACK_REQUIRE_KEY = env_bool("DIGITS_FEEDBACK_REQUIRE_KEY")
if DIGITS_FEEDBACK_REQUIRE_KEY and not (DIGITS_API_KEYS or DIGITS_TRUSTED_API_KEYS):
    raise SettingError(
        "DIGITS_FEEDBACK_REQUIRE_KEY is on but no key is configured: set DIGITS_API_KEYS or "
        "DIGITS_TRUSTED_API_KEYS (or every label would be refused)"
    )
# Rate limit of /feedback/ per label source (API key, else client address); "off": none.
# Trusted keys are not limited.
DIGITS_FEEDBACK_RATE = env_rate("DIGITS_FEEDBACK_RATE", "30/min")
# Failed authentications (401s) allowed per client address; beyond it, that address's requests
# that need a key or token get 429 until the window has passed. "off": no limit.
DIGITS_AUTH_FAILURE_RATE = env_rate("DIGITS_AUTH_FAILURE_RATE", "20/min")
# The cache holding rate-limit counters: "file" (default; shared by every worker on one host),
# "database" (shared by every host; needs `manage.py createcachetable`, which the container
# runs), or "locmem" (per worker process: a limit of N/min becomes N/min per worker).
DIGITS_CACHE = env_choice("DIGITS_CACHE", "file", ("file", "database", "locmem")).lower()
_CACHE_BACKENDS = {
    "file": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(VAR_DIR / "cache"),
    },
    "database": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "digits_cache",
    },
    "locmem": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
}
CACHES = {"default": {**_CACHE_BACKENDS[DIGITS_CACHE], "OPTIONS": {"MAX_ENTRIES": 100_000}}}

# --- Static files, security headers --------------------------------------------------------------
STATIC_URL = "static/"
# WhiteNoise serves the apps' static folders directly (no collectstatic step, no STATIC_ROOT,
# nothing stale left in a data volume after an upgrade); files are indexed once per worker.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
DIGITS_BEHIND_TLS_PROXY = env_bool("DIGITS_BEHIND_TLS_PROXY")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if DIGITS_BEHIND_TLS_PROXY else None
# HSTS only where TLS is known to be in front (a browser remembers it for this long).
SECURE_HSTS_SECONDS = env_int("DIGITS_HSTS_SECONDS", 0, low=0)
# Sent on every response that does not set its own. The page and the API docs load scripts
# and styles from /static/ only (no inline code, no CDN); drawings and previews are blob:/data:.
# DIGITS_CSP replaces the policy; DIGITS_CSP=off sends none.
DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
_csp = os.environ.get("DIGITS_CSP", "").strip()
DIGITS_CSP = "" if _csp.lower() == "off" else (_csp or DEFAULT_CSP)
DIGITS_PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"

# --- Metrics -------------------------------------------------------------------------------------
# Set by gunicorn.conf.py (and the container's entrypoint) before any worker starts: each worker
# writes its counters there and GET /metrics adds them up. Empty: one process (runserver, tests).
PROMETHEUS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
# Optional bearer token for GET /metrics (empty: open, for a scraper on a private network).
DIGITS_METRICS_TOKEN = env_secret("DIGITS_METRICS_TOKEN")

# --- Logging -------------------------------------------------------------------------------------
# One line a request from the "predicciones.access" logger (RequestContextMiddleware); with
# DIGITS_LOG_JSON=1 every line is one JSON object, for a log shipper.
DIGITS_LOG_JSON = env_bool("DIGITS_LOG_JSON")
DIGITS_LOG_LEVEL = env_choice(
    "DIGITS_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
).upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"()": "predicciones.logfmt.PlainFormatter"},
        "json": {"()": "predicciones.logfmt.JsonFormatter"},
    },
    "filters": {
        "security_no_traceback": {"()": "predicciones.logfmt.SecurityRecordsWithoutTraceback"}
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if DIGITS_LOG_JSON else "plain",
            "filters": ["security_no_traceback"],
        }
    },
    "root": {"handlers": ["console"], "level": DIGITS_LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        # boto3 says "Found credentials..." at INFO on every client it makes.
        "botocore": {"level": "WARNING"},
        "boto3": {"level": "WARNING"},
    },
}

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
