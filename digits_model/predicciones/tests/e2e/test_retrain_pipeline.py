"""The retraining pipeline end to end, against a real server and its operator commands.

Proof for the seed's strategy: labelled feedback on photos of seven-segment displays (a
population the base handwriting lacks and the preprocessing cannot normalise away), given
by the operator's labellers (a trusted key) -> run_pipeline -> a gated candidate that reads
unseen display digits clearly better, rolled out as a canary with the old version one
rollback away; random labels are refused by the gate; a second pass respects the cooldown.
What anonymous labels can and cannot do is in ``test_feedback_attack.py``.
"""

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from harness.rendering import digits_data, render_upload
from predicciones.ml.sources import load_mnist
from predicciones.ml.synth import render

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MODEL = "clf.pickle"
#: load_digits rows whose renderings are labelled as feedback...
FEEDBACK_ROWS = np.arange(0, 1200, 3)
#: ...and rows never sent as feedback, for judging the versions on unseen ones.
UNSEEN_ROWS = np.arange(1, 1797, 6)


def post(server, data: bytes, model: str = MODEL) -> requests.Response:
    return requests.post(
        server.url("/predict/"), files={"image": ("d.jpg", data)}, data={"model": model}, timeout=60
    )


def uploads(rows, style, seed):
    X, y = digits_data()
    rng = np.random.default_rng(seed)
    return [(render_upload(X[i], rng=rng, style=style, label=y[i]), int(y[i])) for i in rows]


#: The operator's labellers' key (DIGITS_TRUSTED_API_KEYS): the gate believes their labels.
TRUSTED_KEY = "trusted-labeller-key-0123"
TRUSTED = {"X-API-Key": TRUSTED_KEY}


def send_feedback(server, batch, labels=None, headers=TRUSTED) -> int:
    """Post every upload and label what was answered; returns how many were labelled.

    ``headers`` go with the label: the trusted key by default; a callable gives each item's
    (``i`` -> headers), for labels from many clients.
    """

    def one(numbered):
        i, ((data, _), label) = numbered
        response = post(server, data)
        if response.status_code != 200:  # a refused upload cannot be labelled
            return 0
        labelled = requests.post(
            server.url("/feedback/"),
            json={"query_id": response.json()["query_id"], "label": label},
            headers=headers(i) if callable(headers) else headers,
            timeout=30,
        )
        assert labelled.status_code == 200, labelled.text
        return 1

    labels = [truth for _, truth in batch] if labels is None else labels
    with ThreadPoolExecutor(4) as pool:
        return sum(pool.map(one, enumerate(zip(batch, labels, strict=True))))


def accuracy(server, batch, model: str) -> float:
    def one(item):
        data, truth = item
        response = post(server, data, model)
        return response.status_code == 200 and response.json()["prediction"] == truth

    with ThreadPoolExecutor(4) as pool:
        return float(np.mean(list(pool.map(one, batch))))


def pipeline(server, *args) -> dict:
    result = server.manage("run_pipeline", "--json", "--quick", *args)
    return json.loads(result.stdout)


@pytest.fixture
def server_with_quick_live(fresh_server_factory):
    """A server whose live model is trained like the pipeline's quick candidates (fair gate)."""
    server = fresh_server_factory(
        workers=2,
        env={
            "DIGITS_CANARY_PERCENT": "20",
            "DIGITS_RETRAIN_COOLDOWN_HOURS": "24",
            "DIGITS_TRUSTED_API_KEYS": TRUSTED_KEY,
        },
    )
    server.manage("train_model", "--register", "--quick")
    server.manage("promote", MODEL, "2")
    return server


def test_display_feedback_retrains_a_better_model_rolled_out_as_a_canary(server_with_quick_live):
    server = server_with_quick_live
    labelled = send_feedback(server, uploads(FEEDBACK_ROWS, "segments", seed=1))
    assert labelled >= 380

    doc = pipeline(server, "--min-samples", "100")
    assert doc["canary_review"]["decision"] == "none"
    assert doc["drift"]["status"] == "drift", doc["drift"]
    assert doc["decision"]["retrain"] and doc["decision"]["trigger"] == "drift"
    retrain = doc["retrain"]
    assert retrain["status"] == "registered", json.dumps(retrain["gate"])
    gate = retrain["gate"]
    assert gate["passed"] and gate["improvement"] >= 0.005
    assert gate["judged_on"] == "feedback" and gate["provenance"]["judged_trusted"] >= 30
    assert gate["provenance"]["trained_untrusted"] == 0 and gate["provenance"]["capped"] == 0
    assert gate["feedback_part"]["candidate_accuracy"] > gate["feedback_part"]["live_accuracy"]
    candidate = retrain["candidate_version"]
    assert candidate == 3 and retrain["live_version"] == 2
    assert doc["rollout"] == {"strategy": "canary", "version": 3, "percent": 20}

    unseen = uploads(UNSEEN_ROWS, "segments", seed=2)
    old, new = accuracy(server, unseen, f"{MODEL}:2"), accuracy(server, unseen, f"{MODEL}:3")
    # Clearly better: at least a quarter of the old version's errors gone, and 4 points.
    assert 1 - new <= 0.75 * (1 - old) and new >= old + 0.04, (
        f"unseen display digits: v2 {old:.3f}, v3 {new:.3f}"
    )

    listing = {m["version"]: m for m in json.loads(server.manage("models", "--json").stdout)}
    assert listing[2]["live"] and listing[3]["stage"] == "candidate"
    assert listing[3]["parent_version"] == 2
    assert listing[3]["candidate_percent"] == 20

    # The old version is one rollback away: rollback stops the canary, v2 answers alone.
    server.manage("rollback", MODEL)
    versions = {post(server, data).json()["model_version"] for data, _ in unseen[:40]}
    assert versions == {2}

    # A second pass right away, with new labels again, respects the cooldown: no training.
    assert send_feedback(server, uploads(FEEDBACK_ROWS[:40], "segments", seed=5)) >= 30
    again = pipeline(server, "--min-samples", "20")
    assert again["decision"]["retrain"]
    assert again["retrain"]["status"] == "skipped"
    assert again["retrain"]["reasons"][0].startswith("cooldown")
    assert len(json.loads(server.manage("models", "--json").stdout)) == 3


def handwriting_uploads(n, style, seed):
    """Scans of MNIST validation digits: the handwriting the base model is trained on."""
    images, labels = load_mnist()
    rows = np.arange(9, len(labels), 10)[:n]
    rng = np.random.default_rng(seed)
    return [(render(images[i], style, rng), int(labels[i])) for i in rows]


def test_random_labels_are_refused_by_the_gate(server_with_quick_live):
    server = server_with_quick_live
    # Ordinary handwriting, so no drift: the labels alone trigger the retraining.
    batch = handwriting_uploads(300, "scan", seed=3)
    rng = np.random.default_rng(7)
    assert send_feedback(server, batch, labels=rng.integers(0, 10, len(batch)).tolist()) >= 280

    doc = pipeline(server, "--min-samples", "100", "--min-samples-without-drift", "100")
    assert doc["drift"]["status"] == "ok"
    assert doc["decision"]["trigger"] == "labels"
    assert doc["retrain"]["status"] == "refused"
    assert doc["retrain"]["reasons"]
    assert "rollout" not in doc

    listing = json.loads(server.manage("models", "--json").stdout)
    assert [(m["version"], m["live"], m["stage"]) for m in listing] == [
        (1, False, "previous"),
        (2, True, "live"),
    ]
