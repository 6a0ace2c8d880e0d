"""Canary, promote and rollback on multi-worker gunicorn under steady concurrent load.

The proof for "sin interrumpir el servicio": no request fails or stalls while versions
change, the canary share holds, every worker follows within two seconds, and every 200
has its row in the prediction log. Run on SQLite (WAL) and on PostgreSQL.
"""

import json
import time

import pytest

from harness.rendering import draw_digit_image
from predicciones.tests.e2e.load import LoadRun

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FOLLOW_SECONDS = 2.0  # every worker must follow a change within this


def rollout_under_load(server):
    images = [draw_digit_image(d, size=s) for d in "017" for s in (120, 200, 320)]
    server.manage("train_model", "--register", "--quick", "--seed", "1")  # version 2, not live
    load = LoadRun(server.url("/predict/"), images, clients=8).start()
    try:
        time.sleep(1.0)
        server.manage("canary", "clf.pickle", "2", "--percent", "50")
        canary_from = time.monotonic() + FOLLOW_SECONDS
        load.wait_for(450, since=canary_from)
        canary_to = time.monotonic()

        server.manage("promote", "clf.pickle")
        promoted_at = time.monotonic()
        load.wait_for(150, since=promoted_at + FOLLOW_SECONDS)

        rollback_started = time.monotonic()  # the change lands between these two times
        server.manage("rollback", "clf.pickle")
        rolled_back_at = time.monotonic()
        load.wait_for(150, since=rolled_back_at + FOLLOW_SECONDS)
    finally:
        samples = load.stop()

    failures = [s for s in samples if s.status != 200]
    assert not failures, f"{len(failures)} failed requests, e.g. {failures[:3]}"
    assert max(s.received - s.sent for s in samples) < 10, "a request stalled"
    assert {s.version for s in samples} == {1, 2}

    in_canary = [s for s in samples if canary_from <= s.sent and s.received <= canary_to]
    share = sum(s.version == 2 for s in in_canary) / len(in_canary)
    assert len(in_canary) >= 400
    assert 0.40 <= share <= 0.60, f"canary share {share:.2f} over {len(in_canary)} requests"

    after_promote = [
        s
        for s in samples
        if promoted_at + FOLLOW_SECONDS <= s.sent and s.received < rollback_started
    ]
    assert after_promote and {s.version for s in after_promote} == {2}
    after_rollback = [s for s in samples if s.sent >= rolled_back_at + FOLLOW_SECONDS]
    assert after_rollback and {s.version for s in after_rollback} == {1}

    exported = server.manage("export_predictions").stdout.splitlines()
    logged = {json.loads(line)["query_id"] for line in exported}
    answered = {s.query_id for s in samples}
    assert answered <= logged, f"{len(answered - logged)} answered predictions are not logged"

    listing = json.loads(server.manage("models", "--json").stdout)
    assert {(m["version"], m["live"], m["stage"]) for m in listing} == {
        (1, True, "live"),
        (2, False, "previous"),
    }


def test_rollout_under_load_on_sqlite(fresh_server_factory):
    rollout_under_load(fresh_server_factory(workers=3))


def test_rollout_under_load_on_postgresql(fresh_server_factory, postgres_url):
    rollout_under_load(fresh_server_factory(workers=3, database_url=postgres_url))
