"""Settings read from the environment: safe defaults, and a clear refusal of bad values."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from harness.paths import BIN_DIR, PROJECT_DIR, REPO_DIR
from harness.processes import free_port
from harness.servers import caller_environ

PROBE = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.DEBUG, s.DIGITS_CACHE, s.DIGITS_PREDICT_RATE, s.DIGITS_API_KEYS, bool(s.DIGITS_CSP))"
)


def load_settings(tmp_path, **env):
    base = caller_environ(inherit=False)
    base.update(DJANGO_SETTINGS_MODULE="digits_model.settings", DIGITS_VAR_DIR=str(tmp_path))
    base.update(env)
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=PROJECT_DIR,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_defaults_are_safe(tmp_path):
    result = load_settings(tmp_path, SECRET_KEY="x")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "file", "None", "[]", "True"]


def test_secret_key_is_required_outside_debug(tmp_path):
    result = load_settings(tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DIGITS_PREDICT_RATE", "fast", "DIGITS_PREDICT_RATE='fast' is not valid: expected a rate"),
        ("DIGITS_CACHE", "redis", "expected one of file, database, locmem"),
        ("DIGITS_TRUSTED_PROXIES", "one", "DIGITS_TRUSTED_PROXIES='one' is not valid"),
    ],
)
def test_bad_values_fail_early_with_the_fix(tmp_path, variable, value, message):
    result = load_settings(tmp_path, SECRET_KEY="x", **{variable: value})
    assert result.returncode != 0
    assert message in result.stderr


def test_switches_turn_on(tmp_path):
    result = load_settings(
        tmp_path,
        SECRET_KEY="x",
        DIGITS_PREDICT_RATE="60/min",
        DIGITS_API_KEYS="key-a-0123456789ab, key-b-0123456789ab",
        DIGITS_CACHE="locmem",
        DIGITS_CSP="off",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "False",
        "locmem",
        "60/min",
        "['key-a-0123456789ab',",
        "'key-b-0123456789ab']",
        "False",
    ]


def test_empty_variables_mean_the_defaults(tmp_path):
    # docker compose passes "${VAR:-}" as an empty string for what the operator did not set.
    names = [
        "DEBUG",
        "ALLOWED_HOSTS",
        "DATABASE_URL",
        "DIGITS_SECRET_KEY_FILE",
        "DIGITS_DEFAULT_MODEL",
        "DIGITS_ARTIFACTS_DIR",
        "DIGITS_S3_BUCKET",
        "DIGITS_S3_PREFIX",
        "DIGITS_CACHE",
        "DIGITS_LOG_LEVEL",
        "DIGITS_PREDICT_RATE",
        "DIGITS_API_KEYS",
        "DIGITS_CSP",
        "DIGITS_TRUSTED_PROXIES",
        "DIGITS_MAX_UPLOAD_BYTES",
    ]
    probe = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.ALLOWED_HOSTS, s.DIGITS_S3_PREFIX, s.DIGITS_DEFAULT_MODEL, "
        "s.DIGITS_ARTIFACTS_DIR == s.VAR_DIR / 'artifacts', s.DIGITS_CACHE)"
    )
    env = caller_environ(inherit=False)
    env.update(dict.fromkeys(names, ""))
    env.update(
        DJANGO_SETTINGS_MODULE="digits_model.settings",
        SECRET_KEY="x",
        DIGITS_VAR_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_DIR, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "['localhost',",
        "'127.0.0.1',",
        "'[::1]']",
        "digits",
        "clf.pickle",
        "True",
        "file",
    ]


def clean_env(tmp_path, **env) -> dict:
    base = caller_environ(inherit=False)
    base.update(SECRET_KEY="x", DIGITS_VAR_DIR=str(tmp_path))
    base.update(env)
    return base


BAD_VALUES = [
    ("DIGITS_DRIFT_WINDOW", "abc", "expected an integer >= 1"),
    ("DIGITS_DRIFT_WINDOW", "0", "expected an integer >= 1"),
    ("DIGITS_ROUTING_TTL", "abc", "expected a number >= 0"),
    ("DIGITS_PREDICT_RATE", "abc", "expected a rate like 60/min or 1000/hour (s, m, h, d)"),
    ("DIGITS_CANARY_PERCENT", "150", "expected an integer from 1 to 99"),
    ("DIGITS_GATE_MIN_IMPROVEMENT", "nan", "expected a number from 0 to 1"),
    ("DIGITS_LOG_LEVEL", "loud", "expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ("DEBUG", "maybe", "expected 1, true, yes, on or 0, false, no, off"),
    ("DIGITS_FEEDBACK_RATE", "lots", "expected a rate like 60/min or 1000/hour (s, m, h, d)"),
    ("DIGITS_FEEDBACK_SOURCE_CAP", "-1", "expected an integer >= 0"),
    ("DIGITS_MAX_FULL_DECODE_PIXELS", "0", "expected an integer >= 1"),
    ("DIGITS_DECODE_WAIT", "-1", "expected a number >= 0"),
]


@pytest.mark.parametrize(("variable", "value", "accepted"), BAD_VALUES)
def test_a_command_with_a_bad_setting_exits_2_with_one_line(tmp_path, variable, value, accepted):
    result = subprocess.run(
        [sys.executable, "manage.py", "models"],
        cwd=PROJECT_DIR,
        env=clean_env(tmp_path, **{variable: value}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"manage.py: error: {variable}={value!r} is not valid: {accepted}"
    ]


def test_a_bad_database_url_names_the_scheme_never_the_password(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "models"],
        cwd=PROJECT_DIR,
        env=clean_env(tmp_path, DATABASE_URL="foo://admin:hunter2@db.internal/digits"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "DATABASE_URL (scheme 'foo') is not valid: expected postgres://" in line
    assert "hunter2" not in line and "db.internal" not in line


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [*BAD_VALUES[:3], ("DIGITS_WORKERS", "many", "expected an integer >= 1")],
)
def test_the_server_refuses_to_start_with_a_bad_setting(tmp_path, variable, value, accepted):
    result = subprocess.run(
        [str(BIN_DIR / "gunicorn"), "digits_model.wsgi", "-c", "gunicorn.conf.py"],
        cwd=PROJECT_DIR,
        env=clean_env(tmp_path, PORT=str(free_port()), **{variable: value}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"gunicorn: error: {variable}={value!r} is not valid: {accepted}"
    ]


def test_without_a_key_the_message_names_the_key_file_in_the_var_dir(tmp_path):
    env = clean_env(tmp_path / "elsewhere")
    del env["SECRET_KEY"]
    result = subprocess.run(
        [sys.executable, "manage.py", "models"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert f"write a random key to {tmp_path / 'elsewhere' / 'secret_key'}" in line
    assert "Set the SECRET_KEY environment variable" in line


def test_make_run_makes_the_key_where_the_var_dir_is(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    result = subprocess.run(
        ["make", "-n", "run", f"DIGITS_VAR_DIR={tmp_path / 'state'}"],
        cwd=REPO_DIR,
        env={k: v for k, v in os.environ.items() if k != "SECRET_KEY"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert f"> {tmp_path / 'state' / 'secret_key'}" in result.stdout


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DIGITS_ADMIN_TOKEN", "s3cret", "DIGITS_ADMIN_TOKEN is too short: it is 6 characters"),
        ("DIGITS_METRICS_TOKEN", "x" * 15, "DIGITS_METRICS_TOKEN is too short: it is 15"),
        (
            "DIGITS_API_KEYS",
            "key-a-0123456789ab,k3yzz",
            "DIGITS_API_KEYS is too short: its entry 2 is 5 characters",
        ),
    ],
)
def test_short_tokens_are_refused_without_showing_them(tmp_path, variable, value, message):
    result = load_settings(tmp_path, SECRET_KEY="x", **{variable: value})
    assert result.returncode != 0
    assert message in result.stderr and "at least 16" in result.stderr
    assert value.split(",")[-1] not in result.stderr


def test_tokens_of_sixteen_characters_are_accepted(tmp_path):
    token = "0123456789abcdef"
    result = load_settings(
        tmp_path,
        SECRET_KEY="x",
        DIGITS_ADMIN_TOKEN=token,
        DIGITS_METRICS_TOKEN=token,
        DIGITS_API_KEYS=token,
    )
    assert result.returncode == 0, result.stderr


def test_the_sqlite_database_is_created_readable_by_its_owner_only(tmp_path):
    env = clean_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.umask(0o022),
    )
    assert result.returncode == 0, result.stderr
    database = tmp_path / "db.sqlite3"
    assert database.stat().st_size > 0, "migrate wrote its tables somewhere else"
    for path in [database, *tmp_path.glob("db.sqlite3-*")]:
        assert path.stat().st_mode & 0o777 == 0o600, (path, oct(path.stat().st_mode))
