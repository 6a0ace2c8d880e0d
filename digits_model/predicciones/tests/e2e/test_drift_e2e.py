"""Drift end to end: uploads to a real gunicorn server whose artifact store is a real S3
server (moto_server on loopback), then ``manage.py check_drift`` as cron would run it.

In-distribution scans of scikit-learn's digits are ``ok``; the same digits written small in
a corner of the page are ``ok`` too (the preprocessing crops, rescales and centres, so
shift and shrink at the image level are normalised away: at the feature level they are
tested in the service tests, as a non-normalising pipeline would log them); photos of
seven-segment displays are ``drift``; five samples are ``insufficient_data``; S3 down is
exit 2.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from harness.rendering import digits_data, render_upload
from harness.s3 import MotoServer, moto_server_path
from harness.servers import ServerProcess
from predicciones.tests.conftest import require

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

N_WINDOW = 200


@pytest.fixture(scope="module")
def stack():
    """moto_server + a bucket + gunicorn (2 workers) using it as the artifact store."""
    require(moto_server_path() is not None, "moto_server is not installed (moto[server])")
    moto = MotoServer().start()
    bucket = moto.create_bucket()
    server = ServerProcess(workers=2, env=moto.env(bucket))
    try:
        server.start()
        yield moto, bucket, server
    finally:
        server.cleanup()
        moto.stop()


def post_uploads(server: ServerProcess, style: str, n: int, seed: int) -> list[dict]:
    X, y = digits_data()
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(X), n, replace=False)
    uploads = [render_upload(X[i], rng=rng, style=style, label=y[i]) for i in idx]

    def post(data: bytes) -> dict:
        with requests.Session() as session:
            response = session.post(
                server.url("/predict/"), files={"image": ("digit.jpg", data)}, timeout=30
            )
        assert response.status_code == 200, response.text
        return response.json()

    with ThreadPoolExecutor(max_workers=3) as pool:
        return list(pool.map(post, uploads))


def check_drift(server: ServerProcess, *args: str) -> tuple[int, dict | str, str]:
    result = server.manage("check_drift", *args, check=False, timeout=120)
    out = json.loads(result.stdout) if "--json" in args and result.stdout else result.stdout
    return result.returncode, out, result.stderr


def test_drift_status_follows_what_the_server_is_shown(stack):
    moto, bucket, server = stack

    post_uploads(server, "scan", 5, seed=1)
    code, doc, _ = check_drift(server, "--json", "--fail-on-drift")
    assert code == 0
    assert (doc["status"], doc["n_current"]) == ("insufficient_data", 5)

    post_uploads(server, "scan", N_WINDOW, seed=2)
    code, doc, _ = check_drift(server, "--json", "--fail-on-drift", "--last", str(N_WINDOW))
    assert code == 0, doc
    assert (doc["status"], doc["severity"], doc["n_current"]) == ("ok", "none", N_WINDOW)

    post_uploads(server, "small_offset", N_WINDOW, seed=3)
    code, doc, _ = check_drift(server, "--json", "--fail-on-drift", "--last", str(N_WINDOW))
    assert code == 0, doc
    assert doc["status"] == "ok"

    answers = post_uploads(server, "segments", N_WINDOW, seed=4)
    code, doc, err = check_drift(server, "--json", "--fail-on-drift", "--last", str(N_WINDOW))
    assert code == 1
    assert doc["status"] == "drift" and doc["severity"] in {"warning", "critical"}
    assert doc["drifted_share"] >= doc["thresholds"]["warning_share"]
    assert "drift found" in err and "Traceback" not in err
    assert doc["model"] == "clf.pickle" and doc["version"] == answers[0]["model_version"]

    # The human table for the same window.
    code, table, _ = check_drift(server, "--last", str(N_WINDOW))
    assert code == 0
    assert "DRIFT" in table and "Worst features" in table and "Normalised W1 per pixel" in table

    # Everything went through S3: the baseline's artifact and statistics, and every report.
    keys = moto.keys(bucket)
    assert "digits/models/clf.pickle/v1/model.pickle" in keys
    assert "digits/models/clf.pickle/v1/training_stats.json" in keys
    assert len([k for k in keys if k.startswith("digits/drift/clf.pickle/v1/")]) == 5

    html = requests.get(server.url("/dashboard/"), timeout=10).text
    assert ">drift</span>" in html
    assert html.count("<circle") == 5  # one point per report in the history


def test_check_drift_with_s3_stopped_exits_2_with_one_line(stack):
    moto, _, server = stack
    before = server.manage(
        "shell", "-c", "from predicciones.models import DriftReport as D; print(D.objects.count())"
    ).stdout.strip()
    moto.stop()
    code, out, err = check_drift(server, "--json")
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "s3://" in err
    after = server.manage(
        "shell", "-c", "from predicciones.models import DriftReport as D; print(D.objects.count())"
    ).stdout.strip()
    assert before == after
