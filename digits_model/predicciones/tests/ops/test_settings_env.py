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
        DIGITS_API_KEYS="a, b",
        DIGITS_CACHE="locmem",
        DIGITS_CSP="off",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "locmem", "60/min", "['a',", "'b']", "False"]


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
