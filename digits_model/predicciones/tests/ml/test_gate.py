"""The validation gate's rule, on hand-made predictions."""

import hashlib

import numpy as np
import pytest

from predicciones.ml.gate import evaluate_gate, in_feedback_holdout, validation_set_id

Y = np.repeat(np.arange(10), 20)  # 20 rows per class


def with_errors(y, wrong_per_class):
    """Predictions equal to y except the first ``wrong_per_class[c]`` rows of each class."""
    pred = y.copy()
    for c, n in enumerate(wrong_per_class):
        rows = np.flatnonzero(y == c)[:n]
        pred[rows] = (c + 1) % 10
    return pred


def test_a_better_candidate_passes():
    live = with_errors(Y, [2] * 10)
    candidate = with_errors(Y, [1] * 10)
    result = evaluate_gate(Y, live, candidate, min_improvement=0.01, max_class_drop=0.05)
    assert result.passed and result.reasons == []
    assert result.improvement == pytest.approx(0.05)
    assert result.candidate.accuracy == pytest.approx(0.95)


def test_too_small_a_gain_is_refused():
    live = with_errors(Y, [2] * 10)
    candidate = with_errors(Y, [2] * 9 + [1])
    result = evaluate_gate(Y, live, candidate, min_improvement=0.01)
    assert not result.passed
    assert "below the required" in result.reasons[0]


def test_a_class_that_regresses_is_refused_even_if_overall_is_better():
    live = with_errors(Y, [3] * 10)
    candidate = with_errors(Y, [0] * 9 + [6])  # class 9 loses 3 of 20
    result = evaluate_gate(Y, live, candidate, min_improvement=0.01, max_class_drop=0.1)
    assert not result.passed
    assert result.improvement > 0.1
    assert any(reason.startswith("class 9 recall falls") for reason in result.reasons)


def test_a_class_drop_within_noise_is_not_a_regression():
    y = np.repeat(np.arange(10), 70)
    live = with_errors(y, [6] * 10)
    two_lost = with_errors(y, [0] * 9 + [8])  # class 9: 2 more of 70 wrong, a 2.9-point drop
    result = evaluate_gate(y, live, two_lost, max_class_drop=0.02)
    assert result.passed, result.reasons
    four_lost = with_errors(y, [0] * 9 + [10])  # 4 more wrong: lost 4, won 0, beyond noise
    result = evaluate_gate(y, live, four_lost, max_class_drop=0.02)
    assert [r.split(" recall")[0] for r in result.reasons] == ["class 9"]


def test_small_classes_are_not_gated():
    y = np.concatenate([np.repeat(np.arange(9), 20), [9, 9]])
    live = y.copy()
    candidate = y.copy()
    candidate[-2:] = 0  # class 9 has only 2 rows: its recall is noise
    candidate[:10] = 0  # a gain elsewhere is impossible; compare the class rule alone
    result = evaluate_gate(y, live, live.copy(), min_improvement=0.0, min_class_count=10)
    assert result.passed
    result = evaluate_gate(y, live, candidate, min_improvement=-1.0, min_class_count=10)
    assert all("class 9" not in reason for reason in result.reasons)


def test_a_gain_within_noise_is_refused():
    y = np.repeat(np.arange(10), 20)
    live = with_errors(y, [4] * 10)
    candidate = live.copy()
    candidate[np.flatnonzero(y == 0)[:3]] = 0  # three rows won...
    candidate[np.flatnonzero(y == 1)[5:6]] = 0  # ...one lost: +1 point, but not evidence
    result = evaluate_gate(y, live, candidate, min_improvement=0.005, max_class_drop=0.2)
    assert result.improvement == pytest.approx(0.01)
    assert not result.passed and "within noise" in result.reasons[0]


def feedback_case(feedback_gain: int, base_loss: int):
    """100 base rows (10 wrong for live) and 60 feedback rows (30 wrong for live)."""
    y = np.concatenate([np.repeat(np.arange(10), 10), np.repeat(np.arange(10), 6)])
    feedback = np.arange(len(y)) >= 100
    live = y.copy()
    live[np.flatnonzero(~feedback)[:10]] = 0
    live[np.flatnonzero(feedback)[:30]] = 5
    candidate = live.copy()
    fixed = np.flatnonzero(feedback & (live != y))[:feedback_gain]
    candidate[fixed] = y[fixed]
    broken = np.flatnonzero(~feedback & (live == y))[:base_loss]
    candidate[broken] = (y[broken] + 1) % 10
    return y, live, candidate, feedback


def test_with_held_out_feedback_the_gain_is_judged_on_it():
    y, live, candidate, feedback = feedback_case(feedback_gain=12, base_loss=0)
    # Overall +7.5 points; on the feedback alone +20: the gain is measured there.
    result = evaluate_gate(y, live, candidate, feedback=feedback, max_class_drop=0.5)
    assert result.passed, result.reasons
    assert result.judged_on == "feedback"
    assert result.improvement == pytest.approx(12 / 60)
    assert result.base_change == 0.0


def test_a_candidate_that_reads_the_base_rows_worse_is_refused():
    y, live, candidate, feedback = feedback_case(feedback_gain=12, base_loss=2)
    result = evaluate_gate(
        y, live, candidate, feedback=feedback, min_improvement=0.01, max_class_drop=0.5
    )
    assert not result.passed
    assert result.base_change == pytest.approx(-0.02)
    assert any("base validation rows falls" in reason for reason in result.reasons)


def test_a_few_feedback_rows_are_not_judged_alone():
    y, live, candidate, _ = feedback_case(feedback_gain=12, base_loss=0)
    few = np.zeros(len(y), bool)
    few[-20:] = True  # fewer than MIN_FEEDBACK_ROWS
    result = evaluate_gate(y, live, candidate, feedback=few, max_class_drop=0.5)
    assert result.judged_on == "all" and result.base_change is None
    assert result.improvement == pytest.approx(12 / 160)


def test_empty_validation_set_is_an_error():
    with pytest.raises(ValueError):
        evaluate_gate(np.array([], dtype=int), np.array([]), np.array([]))


def test_feedback_holdout_is_stable_and_near_its_share():
    shas = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(5000)]
    chosen = [in_feedback_holdout(sha, 20) for sha in shas]
    assert chosen == [in_feedback_holdout(sha, 20) for sha in shas]
    assert 0.18 < np.mean(chosen) < 0.22
    assert in_feedback_holdout(shas[0], 100) and not in_feedback_holdout(shas[0], 0)


def test_validation_set_id_depends_on_content_not_order():
    a = validation_set_id(537, ["b", "a"])
    assert a == validation_set_id(537, ["a", "b"])
    assert a != validation_set_id(537, ["a"])
    assert a != validation_set_id(536, ["a", "b"])
