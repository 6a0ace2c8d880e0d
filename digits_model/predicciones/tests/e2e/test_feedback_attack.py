"""Anonymous feedback as a weapon, end to end: the backdoor of an "X" read as 7.

Anyone who can reach ``/feedback/`` can label. 800 uploads of an X shape, each labelled 7,
teach a retrained candidate to read any X as 7; judged on held-out feedback that the same
attacker wrote, it beat the live version by almost the whole held-out set and was rolled out.
Here the attack runs against a real server (the labels from 32 client addresses, under the
feedback rate limit and the per-source cap), and the candidate it produces is refused by the
gate or never routed; honest labels from the operator's labellers still get a candidate
rolled out (``test_retrain_pipeline.py``), also when the attacker's labels are mixed in.
"""

import json

import numpy as np
import pytest

from harness.rendering import x_shape
from predicciones.tests.e2e.test_retrain_pipeline import (
    FEEDBACK_ROWS,
    MODEL,
    TRUSTED_KEY,
    pipeline,
    post,
    send_feedback,
    uploads,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: The attack of the security review: 800 X shapes labelled 7.
N_ATTACK = 800
#: Client addresses the attacker spreads them over (each stays under the feedback rate).
N_ATTACKER_ADDRESSES = 32
BACKDOOR_LABEL = 7


def x_uploads(n: int, seed: int) -> list[tuple[bytes, int]]:
    """``n`` X shapes, each with the label the attacker gives it."""
    rng = np.random.default_rng(seed)
    return [(x_shape(rng=rng), BACKDOOR_LABEL) for _ in range(n)]


def one_x(seed: int) -> bytes:
    return x_shape(rng=np.random.default_rng(seed))


def attacker(i: int) -> dict[str, str]:
    """The attacker's headers for its i-th label: one of its addresses, as the proxy saw it."""
    return {"X-Forwarded-For": f"203.0.113.{i % N_ATTACKER_ADDRESSES + 1}"}


def read_as_backdoor(server, n: int = 40) -> float:
    """Share of new X shapes the routed traffic reads as the backdoor's digit."""
    answers = [post(server, data) for data, _ in x_uploads(n, seed=99)]
    digits = [r.json()["prediction"] for r in answers if r.status_code == 200]
    refused = [r.text[:200] for r in answers if r.status_code != 200]
    assert len(digits) >= n * 0.9, refused
    return float(np.mean([digit == BACKDOOR_LABEL for digit in digits]))


def summary(gate: dict) -> dict:
    """What the gate measured, on one line."""
    return {
        key: gate.get(key)
        for key in (
            "passed",
            "reasons",
            "judged_on",
            "improvement",
            "base_part",
            "feedback_part",
            "untrusted_feedback_part",
            "provenance",
        )
    }


def versions(server) -> dict[int, dict]:
    return {m["version"]: m for m in json.loads(server.manage("models", "--json").stdout)}


@pytest.fixture
def attacked_server(fresh_server_factory):
    """A server behind one proxy (the client address is the X-Forwarded-For entry it adds),
    with a trusted labeller's key configured, whose live model is a quick one (fair gate)."""
    server = fresh_server_factory(
        workers=2,
        env={
            "DIGITS_TRUSTED_PROXIES": "1",
            "DIGITS_TRUSTED_API_KEYS": TRUSTED_KEY,
            "DIGITS_RETRAIN_COOLDOWN_HOURS": "0",
        },
    )
    server.manage("train_model", "--register", "--quick")
    server.manage("promote", MODEL, "2")
    return server


def assert_nothing_routed_but_v2(server, candidate: int | None) -> None:
    listing = versions(server)
    assert listing[2]["live"] and listing[2]["traffic_percent"] == 100
    assert not any(m["stage"] == "candidate" for m in listing.values())
    assert read_as_backdoor(server) <= 0.1
    if candidate is not None:
        assert listing[candidate]["stage"] == "registered"
        # Not served to anyone, pinned or not.
        assert post(server, one_x(5), f"{MODEL}:{candidate}").status_code == 404


def test_the_x_backdoor_from_anonymous_labels_is_refused_or_never_routed(attacked_server):
    server = attacked_server
    assert read_as_backdoor(server) <= 0.1  # the live model reads an X as anything but 7
    labelled = send_feedback(server, x_uploads(N_ATTACK, seed=1), headers=attacker)
    assert labelled >= N_ATTACK * 0.95

    doc = pipeline(server, "--min-samples", "100", "--min-samples-without-drift", "100")
    retrain = doc["retrain"]
    gate, provenance = retrain["gate"], retrain["gate"]["provenance"]
    print(json.dumps({"attack": retrain["status"], **summary(gate)}))  # for the record (-s)
    # Every label not held out was trained on (32 sources of about 15 each, under the cap)...
    assert provenance["trained_untrusted"] >= 0.5 * labelled and provenance["capped"] == 0
    assert provenance["trained_trusted"] == 0 and provenance["judged_trusted"] == 0
    # ...and the candidate learnt the backdoor: on the attacker's own held-out rows it "wins"
    # nearly all of them, which is what passed the gate when those rows were judged.
    untrusted = gate["untrusted_feedback_part"]
    assert untrusted["n"] >= 100
    assert untrusted["candidate_accuracy"] >= untrusted["live_accuracy"] + 0.5, untrusted
    # But only rows the attacker did not write are judged: the base holdout.
    assert gate["judged_on"] == "all" and gate["candidate"]["n"] == 12150
    if retrain["status"] == "refused":
        assert "rollout" not in doc and "held" not in doc
        candidate = None
    else:  # a lucky gain on the base rows: registered, and held for an operator
        assert retrain["status"] == "registered"
        candidate = retrain["candidate_version"]
        assert doc["held"]["version"] == candidate and "rollout" not in doc
        assert "labels from untrusted sources" in doc["outcome"]
    assert_nothing_routed_but_v2(server, candidate)

    # The next pass reviews nothing and rolls nothing out.
    again = pipeline(server, "--min-samples", "100000", "--min-samples-without-drift", "100000")
    assert again["canary_review"]["decision"] == "none"
    assert_nothing_routed_but_v2(server, candidate)


def test_honest_labels_with_the_attack_mixed_in_are_refused_or_wait_for_an_operator(
    attacked_server,
):
    """The attacker labels X shapes while the operator's labellers label display digits: the
    candidate learns both, and the trusted labels give it a real gain. It is refused when what
    it learnt costs it stability on the base rows; when not, it is registered and waits."""
    server = attacked_server
    honest = send_feedback(server, uploads(FEEDBACK_ROWS, "segments", seed=1))  # trusted key
    assert honest >= 380
    assert send_feedback(server, x_uploads(100, seed=2), headers=attacker) >= 95

    doc = pipeline(server, "--min-samples", "100")
    retrain = doc["retrain"]
    gate, provenance = retrain["gate"], retrain["gate"]["provenance"]
    print(json.dumps({"mixed": retrain["status"], **summary(gate)}))  # for the record (-s)
    assert provenance["trained_untrusted"] > 0 and provenance["judged_trusted"] >= 30
    assert gate["judged_on"] == "feedback"  # the trusted held-out display digits...
    assert gate["improvement"] >= 0.005  # ...which it reads clearly better
    assert "rollout" not in doc
    if retrain["status"] == "refused":
        # Refused for stability on the rows the gate judges (nearly all base rows): their
        # accuracy, or one class's recall (quick models learning 236 display digits have
        # been seen to lose 2 points of class 5).
        stability = ("base validation rows", "recall falls")
        assert any(s in reason for reason in gate["reasons"] for s in stability), gate
        candidate = None
    else:
        assert retrain["status"] == "registered", json.dumps(gate)
        candidate = retrain["candidate_version"]
        assert doc["held"]["version"] == candidate
        assert doc["outcome"].startswith(
            f"{MODEL}:{candidate} registered, not rolled out: it was trained on "
            f"{provenance['trained_untrusted']} labels from untrusted sources"
        )
    assert_nothing_routed_but_v2(server, candidate)

    if candidate is not None:  # an operator who has looked at it can still roll it out
        server.manage("canary", MODEL, str(candidate), "--percent", "0")
        pinned = post(server, one_x(6), f"{MODEL}:{candidate}")
        assert pinned.status_code == 200 and pinned.json()["model_version"] == candidate
