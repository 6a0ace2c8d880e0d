"""/metrics and the access log against real gunicorn with two workers.

Requests spread across workers must all be counted, whichever worker answers the scrape, and
the counts must survive a worker being replaced.
"""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from harness.rendering import draw_digit_image
from harness.servers import ServerProcess
from predicciones.tests.e2e.workers import access_lines, wait_until_every_worker_answers

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

N_PREDICTIONS = 40
N_UNKNOWN = 10


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("metrics-e2e")
    server = ServerProcess(
        workers=2,
        var_dir=var_dir,
        env={
            "PROMETHEUS_MULTIPROC_DIR": str(var_dir / "metrics"),
            "DIGITS_LOG_LEVEL": "INFO",
            "DIGITS_LOG_JSON": "1",
        },
    )
    with server:
        wait_until_every_worker_answers(server)
        yield server


def scrape(srv) -> dict[str, list]:
    # A fresh connection each time: any worker may answer.
    response = requests.get(srv.url("/metrics"), headers={"Connection": "close"}, timeout=10)
    assert response.status_code == 200
    return {f.name: f.samples for f in text_string_to_metric_families(response.text)}


def total(samples, name: str | None = None, **labels) -> float:
    return sum(
        s.value
        for s in samples
        if (name is None or s.name == name) and all(s.labels.get(k) == v for k, v in labels.items())
    )


def post_image(srv, image: bytes, model: str = "clf.pickle") -> requests.Response:
    return requests.post(
        srv.url("/predict/"),
        files={"image": ("digit.png", image, "image/png")},
        data={"model": model},
        headers={"Connection": "close"},
        timeout=30,
    )


@pytest.fixture(scope="module")
def traffic(srv):
    """Concurrent predictions and unknown-model errors, answered by both workers."""
    image = draw_digit_image("7")
    jobs = ["clf.pickle"] * N_PREDICTIONS + ["nope.pickle"] * N_UNKNOWN
    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(lambda model: post_image(srv, image, model), jobs))
    return responses


def test_requests_spread_over_workers_are_all_counted(srv, traffic):
    codes = [r.status_code for r in traffic]
    assert codes.count(200) == N_PREDICTIONS and codes.count(404) == N_UNKNOWN
    pids = {line["pid"] for line in access_lines(srv) if line["endpoint"] == "predict"}
    assert len(pids) >= 2, "the load did not reach both workers"  # else this proves nothing
    metric_files = list(Path(srv.env["PROMETHEUS_MULTIPROC_DIR"]).glob("counter_*.db"))
    assert len(metric_files) >= 2
    for _ in range(6):  # scrapes answered by either worker all see every request
        families = scrape(srv)
        assert total(families["digits_predictions"], "digits_predictions_total") == N_PREDICTIONS
        requests_total = families["digits_http_requests"]
        assert total(requests_total, endpoint="predict", status="200") == N_PREDICTIONS
        assert total(requests_total, endpoint="predict", status="404") == N_UNKNOWN
        model_seconds = families["digits_prediction_model_seconds"]
        assert total(model_seconds, "digits_prediction_model_seconds_count") == N_PREDICTIONS
        confidence = families["digits_prediction_confidence"]
        assert total(confidence, "digits_prediction_confidence_count") == N_PREDICTIONS


def test_every_request_has_one_structured_log_line(srv, traffic):
    lines = {line["query_id"]: line for line in access_lines(srv)}
    for response in traffic:
        body = response.json()
        line = lines[body["query_id"]]
        assert line["status"] == response.status_code
        assert line["method"] == "POST" and line["path"] == "/predict/"
        assert line["latency_ms"] > 0
        if response.status_code == 200:
            assert line["model"] == body["model"]
            assert line["model_version"] == body["model_version"]
            assert line["prediction"] == body["prediction"]
            assert line["model_ms"] > 0
    predict_lines = [line for line in access_lines(srv) if line["path"] == "/predict/"]
    assert len(predict_lines) == len(traffic)


def invent(srv, start: int, n: int) -> None:
    session = requests.Session()
    for i in range(start, start + n):
        assert session.request(f"X{i:05d}M", srv.url("/predict/"), timeout=10).status_code == 405
        assert session.get(srv.url(f"/invented/{i}"), timeout=10).status_code == 404


def metric_file_bytes(srv) -> int:
    folder = Path(srv.env["PROMETHEUS_MULTIPROC_DIR"])
    return sum(path.stat().st_size for path in folder.glob("*.db"))


def test_invented_methods_and_paths_grow_neither_the_scrape_nor_the_files(srv, traffic):
    invent(srv, 0, 40)  # both workers have their "other" and "unmatched" series from here
    for _ in range(4):  # and the scrape's own, whichever worker answers
        scrape(srv)
    scrape_before = len(requests.get(srv.url("/metrics"), timeout=10).content)
    files_before = metric_file_bytes(srv)
    invent(srv, 40, 1000)
    scrape_after = len(requests.get(srv.url("/metrics"), timeout=10).content)
    assert scrape_after - scrape_before < 300, (scrape_before, scrape_after)
    assert metric_file_bytes(srv) == files_before
    methods = {s.labels["method"] for s in scrape(srv)["digits_http_requests"]}
    assert "other" in methods and not any(m.startswith("X") for m in methods)


def test_counts_survive_a_worker_being_replaced(srv, traffic):
    before = total(scrape(srv)["digits_predictions"], "digits_predictions_total")
    victim = srv.worker_pids()[0]
    os.kill(victim, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = srv.worker_pids()
        if victim not in pids and len(pids) == 2:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"gunicorn did not replace worker {victim}")
    srv.wait_ready()
    image = draw_digit_image("7")
    for _ in range(4):
        assert post_image(srv, image).status_code == 200
    for _ in range(4):
        families = scrape(srv)
        assert total(families["digits_predictions"], "digits_predictions_total") == before + 4


def test_a_restart_starts_counting_from_zero(srv, traffic):
    metrics_dir = Path(srv.env["PROMETHEUS_MULTIPROC_DIR"])
    assert list(metrics_dir.glob("*.db"))
    srv.stop()
    srv.start()
    families = scrape(srv)
    assert total(families.get("digits_predictions", []), "digits_predictions_total") == 0
    # The prediction log is durable, so the scrape-time gauges still see the registry.
    assert total(families["digits_model_live_version"], model="clf.pickle") == 1
