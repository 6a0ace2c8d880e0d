"""Drift maths: exact W1 against scipy, the normalised score's floor, the decision rules."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import wasserstein_distance
from sklearn.datasets import load_digits

from predicciones.ml import drift, drift_document


def digits_reference() -> drift.TrainingReference:
    digits = load_digits()
    X = digits.data.astype(int)
    return drift_document.training_reference(
        {
            "n_samples": len(X),
            "value_counts": drift.value_counts(X).tolist(),
            "class_counts": np.bincount(digits.target, minlength=10).tolist(),
        }
    )


@pytest.fixture(scope="module")
def reference() -> drift.TrainingReference:
    return digits_reference()


@pytest.mark.parametrize("seed", range(8))
def test_wasserstein_matches_scipy_on_raw_samples(seed):
    rng = np.random.default_rng(seed)
    n_ref, n_cur, n_features = rng.integers(1, 400), rng.integers(1, 400), 12
    # Skewed, sparse and constant columns, like the pixels of digits.
    X_ref = np.minimum(rng.geometric(rng.uniform(0.05, 0.9), (n_ref, n_features)) - 1, 16)
    X_cur = rng.integers(0, 17, (n_cur, n_features))
    X_ref[:, 0] = 0
    X_cur[:, 1] = 16
    ours = drift.wasserstein_from_counts(drift.value_counts(X_ref), drift.value_counts(X_cur))
    for j in range(n_features):
        assert ours[j] == pytest.approx(wasserstein_distance(X_ref[:, j], X_cur[:, j]), abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 16), min_size=1, max_size=60),
    st.lists(st.integers(0, 16), min_size=1, max_size=60),
)
def test_wasserstein_matches_scipy_for_any_samples(u, v):
    counts_u = drift.value_counts(np.array(u)[:, None])
    counts_v = drift.value_counts(np.array(v)[:, None])
    ours = drift.wasserstein_from_counts(counts_u, counts_v)[0]
    assert ours == pytest.approx(wasserstein_distance(u, v), abs=1e-9)


def test_wasserstein_of_identical_histograms_is_zero_and_is_symmetric():
    rng = np.random.default_rng(0)
    a = drift.value_counts(rng.integers(0, 17, (50, 64)))
    b = drift.value_counts(rng.integers(0, 9, (70, 64)))
    assert np.all(drift.wasserstein_from_counts(a, a * 3) == 0)
    assert np.allclose(drift.wasserstein_from_counts(a, b), drift.wasserstein_from_counts(b, a))


def test_moving_all_mass_by_k_values_costs_k():
    ref = np.zeros((1, 17))
    cur = np.zeros((1, 17))
    ref[0, 3], cur[0, 10] = 5, 2
    assert drift.wasserstein_from_counts(ref, cur)[0] == pytest.approx(7.0)


def test_value_counts_rejects_values_outside_0_to_16():
    with pytest.raises(ValueError, match=r"0\.\.16"):
        drift.value_counts(np.array([[17]]))
    with pytest.raises(ValueError, match="2-D"):
        drift.value_counts(np.zeros(64))


def test_histogram_moments_match_numpy():
    rng = np.random.default_rng(3)
    X = rng.integers(0, 17, (200, 5))
    counts = drift.value_counts(X)
    assert np.allclose(drift.histogram_means(counts), X.mean(axis=0))
    assert np.allclose(drift.histogram_stds(counts), X.std(axis=0))


def test_near_constant_pixel_is_floored_not_exploded(reference):
    # Pixel 0 is blank in every training digit: std 0. One live digit in 100 with a faint
    # speck there must not be an alarm; plain W1/std would be infinite.
    stds = drift.histogram_stds(reference.value_counts)
    assert stds[0] == 0 and (stds < 0.5).sum() >= 10
    live = np.zeros((100, 64), dtype=int)
    live[0, 0] = 2
    result = drift.feature_drift(reference.value_counts, drift.value_counts(live))
    assert result.scale[0] == drift.SCALE_FLOOR
    assert result.normalised[0] == pytest.approx(0.02 / drift.SCALE_FLOOR)
    assert not result.drifted[0]
    # Informative pixels keep their own spread as the scale.
    assert np.all(result.scale[stds > drift.SCALE_FLOOR] == stds[stds > drift.SCALE_FLOOR])


def test_ink_where_training_never_has_any_does_count_as_drift(reference):
    live = np.zeros((100, 64), dtype=int)
    live[:5, 0] = 16  # 5 % of live digits fully inked in the always-blank corner
    result = drift.feature_drift(reference.value_counts, drift.value_counts(live))
    assert result.wasserstein[0] == pytest.approx(0.8)
    assert result.normalised[0] == pytest.approx(0.4)
    assert result.drifted[0]


def test_one_pixel_cannot_dominate_the_overall_score(reference):
    live_counts = reference.value_counts.copy()
    live_counts[0] = 0
    live_counts[0, 16] = reference.n_samples  # the corner pixel always fully inked
    result = drift.compare(reference, live_counts, reference.class_counts)
    assert result.features.normalised[0] == pytest.approx(16 / drift.SCALE_FLOOR)
    assert result.score == pytest.approx(16 / drift.SCALE_FLOOR / 64)
    assert result.severity == "none" and result.status == "ok"


def test_training_data_against_itself_is_ok(reference):
    result = drift.compare(reference, reference.value_counts, reference.class_counts)
    assert result.status == "ok" and result.severity == "none"
    assert result.score == 0 and result.drifted_share == 0
    assert result.class_mix.total_variation == pytest.approx(0)


def test_a_random_sample_of_training_digits_is_ok(reference):
    X = load_digits().data.astype(int)
    sample = X[np.random.default_rng(7).choice(len(X), 150, replace=False)]
    result = drift.compare(reference, drift.value_counts(sample), np.full(10, 15))
    assert result.status == "ok"
    assert result.drifted_share < drift.DEFAULT_THRESHOLDS.warning_share / 2


def test_inverted_digits_are_critical_drift(reference):
    X = load_digits().data.astype(int)[:300]
    result = drift.compare(reference, drift.value_counts(16 - X), np.full(10, 30))
    assert result.status == "drift" and result.severity == "critical"
    assert result.severity_code == 2


def test_severity_follows_the_share_of_drifted_features():
    t = drift.DriftThresholds(feature=0.3, warning_share=0.25, critical_share=0.5)
    assert drift.severity_for(0.0, t) == "none"
    assert drift.severity_for(0.2499, t) == "none"
    assert drift.severity_for(0.25, t) == "warning"
    assert drift.severity_for(0.4999, t) == "warning"
    assert drift.severity_for(0.5, t) == "critical"


def test_too_few_samples_is_insufficient_data_never_an_alarm(reference):
    X = load_digits().data.astype(int)[:5]
    result = drift.compare(reference, drift.value_counts(16 - X), [5] + [0] * 9)
    assert result.status == "insufficient_data"
    assert result.severity == "none"
    assert result.drifted_share > 0.5  # the numbers are still shown


def test_no_live_data_gives_insufficient_data_with_empty_scores(reference):
    result = drift.compare(reference, np.zeros((64, 17)), np.zeros(10))
    assert result.status == "insufficient_data" and result.score is None
    document = drift_document.result_document(result)
    assert document["n_current"] == 0
    assert all(f["wasserstein"] is None for f in document["features"])
    assert document["prediction_mix"]["total_variation"] is None


def test_class_mix_shift_is_total_variation():
    shift = drift.class_mix_shift([10] * 10, [20, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    assert shift.total_variation == pytest.approx(0.9)
    assert drift.class_mix_shift([1] * 10, [3] * 10).total_variation == pytest.approx(0)
    with pytest.raises(ValueError, match="shape"):
        drift.class_mix_shift([1] * 9, [1] * 10)


def test_confidence_shift():
    assert drift.confidence_shift(0.7, 0.9).shift == pytest.approx(-0.2)
    assert drift.confidence_shift(0.7, None).shift is None
    with pytest.raises(ValueError, match="probability"):
        drift.confidence_shift(1.5, 0.9)


def test_result_document_has_64_features_with_positions(reference):
    result = drift.compare(reference, reference.value_counts, reference.class_counts)
    document = drift_document.result_document(result)
    assert len(document["features"]) == 64
    f = document["features"][27]
    assert (f["feature"], f["row"], f["col"]) == (27, 3, 3)
    assert set(f) >= {"feature", "wasserstein", "normalised", "drifted", "scale"}
    assert document["thresholds"]["scale_floor"] == drift.SCALE_FLOOR


@pytest.mark.parametrize(
    ("statistics", "message"),
    [
        ([], "JSON object"),
        ({"class_counts": [1] * 10}, "value_counts"),
        ({"value_counts": [[1] * 17] * 63, "class_counts": [1] * 10}, "64 lists of 17"),
        ({"value_counts": [[1] * 17] * 64, "class_counts": [1] * 9}, "10 counts"),
        ({"value_counts": [[-1] * 17] * 64, "class_counts": [1] * 10}, "non-negative"),
        ({"value_counts": [[1] * 17] * 64, "class_counts": [1] * 10, "n_samples": 5}, "add up"),
    ],
)
def test_malformed_training_statistics_are_refused_with_a_reason(statistics, message):
    with pytest.raises(ValueError, match=message):
        drift_document.training_reference(statistics)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"feature": 0},
        {"warning_share": 0.6, "critical_share": 0.5},
        {"critical_share": 1.5},
        {"min_samples": 0},
    ],
)
def test_inconsistent_thresholds_are_refused(kwargs):
    with pytest.raises(ValueError):
        drift.DriftThresholds(**kwargs)
