"""Workers that start together register the shipped model once, not once each.

Every gunicorn worker bootstraps the registry as it starts (``serving.warm_up``), so they
all reach ``shipped_model_bootstrap`` at the same moment. Eight threads of a fresh process
race here on a real database, each with its own connection, as the workers would.
"""

import json
import subprocess
import sys

import pytest

from harness.paths import PROJECT_DIR

RACE = """
import json, threading
import django
django.setup()
from django.db import connections
from predicciones.models import ModelVersion
from predicciones.services.registry import shipped_model_bootstrap

barrier = threading.Barrier(8)

def worker():
    barrier.wait()
    try:
        shipped_model_bootstrap()
    finally:
        connections.close_all()

threads = [threading.Thread(target=worker) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps(sorted(ModelVersion.objects.values_list("version", flat=True))))
"""


def race(tmp_path, database_url: str | None) -> list[int]:
    env = {
        "PATH": "/usr/bin:/bin",
        "SECRET_KEY": "test-only",
        "DIGITS_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "digits_model.settings",
        "DIGITS_LOG_LEVEL": "WARNING",
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v", "0"], cwd=PROJECT_DIR, env=env, check=True)
    out = subprocess.run(
        [sys.executable, "-c", RACE],
        cwd=PROJECT_DIR,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return json.loads(out.stdout.splitlines()[-1])


@pytest.mark.slow
def test_concurrent_bootstraps_register_one_version_on_sqlite(tmp_path):
    assert race(tmp_path, None) == [1]


@pytest.mark.slow
def test_concurrent_bootstraps_register_one_version_on_postgresql(tmp_path, postgres_url):
    assert race(tmp_path, postgres_url) == [1]
