"""A hung S3 under a real server: the bucket's server (moto_server) is paused with SIGSTOP, so
connections are accepted and never answered. What a load balancer, Prometheus and cron see:
/health/ answers 200 "degraded" with a reason that names no bucket or endpoint, /metrics keeps
``digits_artifact_store_up 0``, /predict/ keeps answering, and the commands that need the
store exit 2 with one line (never 1, which is "drift found"). Resumed, it is "ok" again."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest
import requests

from harness.rendering import draw_digit_image
from harness.s3 import MotoServer, moto_server_path
from predicciones.readiness import STORE_CHECK_SECONDS, STORE_PROBE_SECONDS
from predicciones.tests.conftest import require

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: Long enough for every worker's background probe to have run again.
EVERY_WORKER_PROBED = STORE_CHECK_SECONDS + STORE_PROBE_SECONDS + 1

#: Generous bounds on each answer: a request that hangs on the store fails the test.
ANSWER_TIMEOUT = 8


def poll_health(server, until, tries: int = 80, in_a_row: int = 6) -> list[requests.Response]:
    """Poll until ``in_a_row`` answers in a row meet ``until`` (each worker of the server
    probes the store on its own, so one may still hold the previous answer for a few seconds).
    """
    answers = []
    for _ in range(tries):
        answers.append(requests.get(server.url("/health/"), timeout=ANSWER_TIMEOUT))
        if len(answers) >= in_a_row and all(until(r) for r in answers[-in_a_row:]):
            return answers
        time.sleep(0.25)
    raise AssertionError(f"/health/ never reached the state: {answers[-1].text[:300]}")


def store_gauge(server) -> str:
    text = requests.get(server.url("/metrics"), timeout=ANSWER_TIMEOUT).text
    lines = [line for line in text.splitlines() if line.startswith("digits_artifact_store_up ")]
    assert len(lines) == 1, "digits_artifact_store_up must be present in every scrape"
    return lines[0].split()[1]


def test_a_hung_bucket_degrades_the_host_without_failing_it(fresh_server_factory):
    require(moto_server_path() is not None, "moto_server is not installed (moto[server])")
    moto = MotoServer().start()
    bucket = moto.create_bucket()
    pid = moto.group.process.pid
    try:
        server = fresh_server_factory(workers=2, env=moto.env(bucket))
        image = {"image": ("seven.png", draw_digit_image("7"))}
        assert requests.post(server.url("/predict/"), files=image, timeout=30).status_code == 200
        assert store_gauge(server) == "1.0"

        os.killpg(pid, signal.SIGSTOP)
        answers = poll_health(server, lambda r: r.json()["status"] == "degraded")
        assert {r.status_code for r in answers} == {200}
        body = answers[-1].json()
        assert body["checks"]["artifact_store"].startswith("unreachable: ")
        assert "artifact store" in body["reason"]
        for secret in (bucket, moto.endpoint, str(moto.port), "s3://"):
            assert secret not in answers[-1].text
        # Every worker probes again in the background within STORE_CHECK_SECONDS, traffic or
        # not: after that, every poll, whichever worker answers, is degraded.
        time.sleep(EVERY_WORKER_PROBED)
        for _ in range(10):
            again = requests.get(server.url("/health/"), timeout=ANSWER_TIMEOUT)
            assert (again.status_code, again.json()["status"]) == (200, "degraded")
        assert store_gauge(server) == "0.0"
        for _ in range(3):
            answer = requests.post(server.url("/predict/"), files=image, timeout=30)
            assert answer.status_code == 200, answer.text

        # A cron job's drift check: "could not run" (2), not "drift found" (1), in one line.
        result = server.manage("check_drift", "--fail-on-drift", check=False, timeout=300)
        assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "no answer in time" in result.stderr

        os.killpg(pid, signal.SIGCONT)
        poll_health(server, lambda r: r.json()["status"] == "ok")
        time.sleep(EVERY_WORKER_PROBED)
        for _ in range(4):
            assert store_gauge(server) == "1.0"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGCONT)
        moto.stop()
