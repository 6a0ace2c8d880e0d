"""Settings read from the environment: safe defaults, and a clear refusal of bad values."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from predicciones.tests.servers import PROJECT_DIR

PROBE = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.DEBUG, s.DIGITS_CACHE, s.DIGITS_PREDICT_RATE, s.DIGITS_API_KEYS, bool(s.DIGITS_CSP))"
)


def load_settings(tmp_path, **env):
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DIGITS_", "PROMETHEUS_")) and k not in {"SECRET_KEY"}
    }
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
        ("DIGITS_PREDICT_RATE", "fast", "DIGITS_PREDICT_RATE must look like 60/min"),
        ("DIGITS_CACHE", "redis", "DIGITS_CACHE must be one of file, database, locmem"),
        ("DIGITS_TRUSTED_PROXIES", "one", "DIGITS_TRUSTED_PROXIES must be an integer"),
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
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DIGITS_", "PROMETHEUS_"))
    }
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
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DIGITS_", "PROMETHEUS_")) and k != "DATABASE_URL"
    }
    env.update(SECRET_KEY="x", DIGITS_VAR_DIR=str(tmp_path))
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
