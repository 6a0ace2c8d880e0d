"""Drift statistics: how far the live inputs have moved from the training inputs.

Every feature is an integer 0..16, so its distribution is a 17-bin histogram, and the
Wasserstein-1 distance between two such histograms is exact and cheap: the sum of the
absolute differences of their cumulative distributions (unit spacing between values).

Normalised score
----------------
``W1`` is in ink units (0..16). To compare pixels with each other it is divided by the
pixel's spread in the training data, as common tools do, but with a floor::

    normalised_j = W1_j / max(std_ref_j, SCALE_FLOOR),   SCALE_FLOOR = 2.0

About ten of the 64 pixels (the left and right columns) are (almost) always blank in the
training digits, so their standard deviation is ~0 and dividing by it turns one faint
speck into a huge score. ``SCALE_FLOOR = 2.0`` is the spread of a pixel that is fully
inked (16) in one training digit out of 64 (``16 * sqrt(p * (1 - p))`` with ``p = 1/64``):
every pixel is treated as at least that variable. A blank pixel then counts as drifted
(``normalised >= 0.3``) only when the live digits carry on average 0.6 units more ink
there, e.g. about 4 % of them fully inked where training digits never are: a real change,
not noise. The floor also caps one pixel's score at ``16 / 2 = 8``, so a single pixel
cannot dominate the overall score (at most 8/64 of it).

Overall
-------
``score`` is the mean normalised distance over the 64 features (its magnitude, for trends
and gauges); ``drifted_share`` is the share of features at or above the feature threshold.
The severity comes from the share alone (``warning`` at 25 %, ``critical`` at 50 %): many
pixels moving together is what distinguishes a new kind of input from sampling noise or a
few unusual digits. With fewer than ``min_samples`` live inputs the status is
``insufficient_data`` and the severity ``none``, whatever the numbers say.

The predicted-class mix is compared with the training class mix by total variation
distance (half the L1 distance between proportions, 0..1: the share of predictions that
would have to change class for the mixes to match). The confidence shift is the change in
mean confidence against a reference window. Both are reported, not used for the severity:
users may legitimately send more sevens one day.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .features import N_CLASSES, N_VALUES

#: Lower bound on the reference spread used to normalise W1 (see the module docstring).
SCALE_FLOOR = 2.0

#: Ordered severities and their numeric codes (for gauges).
SEVERITIES = ("none", "warning", "critical")
SEVERITY_CODES = {name: code for code, name in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class DriftThresholds:
    """Every threshold the drift decision uses, declared once.

    Attributes
    ----------
    feature : float
        A feature is drifted when its normalised W1 is at least this.
    warning_share, critical_share : float
        Share of drifted features (0..1) from which the severity is warning / critical.
    min_samples : int
        Fewer live inputs than this give ``insufficient_data``.
    """

    feature: float = 0.3
    warning_share: float = 0.25
    critical_share: float = 0.5
    min_samples: int = 100

    def __post_init__(self):
        if not (np.isfinite(self.feature) and self.feature > 0):
            raise ValueError(f"the feature threshold must be > 0, got {self.feature!r}")
        if not 0 < self.warning_share <= self.critical_share <= 1:
            raise ValueError(
                "drift shares must satisfy 0 < warning <= critical <= 1, got "
                f"warning={self.warning_share!r}, critical={self.critical_share!r}"
            )
        if int(self.min_samples) != self.min_samples or self.min_samples < 1:
            raise ValueError(f"min_samples must be a positive integer, got {self.min_samples!r}")

    def to_dict(self) -> dict:
        return {
            "feature": self.feature,
            "warning_share": self.warning_share,
            "critical_share": self.critical_share,
            "min_samples": int(self.min_samples),
            "scale_floor": SCALE_FLOOR,
        }


DEFAULT_THRESHOLDS = DriftThresholds()


# --- Histograms ----------------------------------------------------------------------------------
def value_counts(X: np.ndarray) -> np.ndarray:
    """Count each value 0..16 per feature.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features), integers 0..16

    Returns
    -------
    counts : ndarray of shape (n_features, 17), int64
        ``counts[j, v]`` is how many samples have value ``v`` in feature ``j``.
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    n_features = X.shape[1]
    integral = X.dtype.kind in "iub" or (X.dtype.kind == "f" and np.all(np.mod(X, 1) == 0))
    if X.size and (not integral or X.min() < 0 or X.max() >= N_VALUES):
        raise ValueError(f"X must hold integers 0..{N_VALUES - 1}")
    # Small integers index the flat histogram as uint16 when they fit: 2-3x faster than intp
    # on millions of rows (less memory traffic), the same counts.
    index_type = np.uint16 if n_features * N_VALUES <= 2**16 and X.dtype.kind in "ub" else np.intp
    offsets = np.arange(n_features, dtype=index_type) * N_VALUES
    flat = (X.astype(index_type) + offsets).ravel()
    return np.bincount(flat, minlength=n_features * N_VALUES).reshape(n_features, N_VALUES)


def _check_counts(counts, name: str) -> np.ndarray:
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[1] != N_VALUES:
        raise ValueError(f"{name} must have shape (n_features, {N_VALUES}), got {counts.shape}")
    if counts.size and (counts.min() < 0 or not np.all(np.isfinite(counts))):
        raise ValueError(f"{name} must hold finite, non-negative counts")
    return counts.astype(np.float64)


def _proportions(counts: np.ndarray, name: str) -> np.ndarray:
    totals = counts.sum(axis=1, keepdims=True)
    if np.any(totals <= 0):
        raise ValueError(f"{name} has a feature with no samples")
    return counts / totals


def histogram_means(counts) -> np.ndarray:
    """Mean value per feature, shape (n_features,), from counts of shape (n_features, 17)."""
    p = _proportions(_check_counts(counts, "counts"), "counts")
    return p @ np.arange(N_VALUES)


def histogram_stds(counts) -> np.ndarray:
    """Standard deviation per feature (population, ddof=0), shape (n_features,)."""
    p = _proportions(_check_counts(counts, "counts"), "counts")
    values = np.arange(N_VALUES)
    mean = p @ values
    return np.sqrt(np.clip(p @ values**2 - mean**2, 0.0, None))


# --- Per-feature statistics ----------------------------------------------------------------------
def wasserstein_from_counts(reference_counts, current_counts) -> np.ndarray:
    """Exact Wasserstein-1 distance per feature between two histograms on 0..16.

    Parameters
    ----------
    reference_counts, current_counts : array-like of shape (n_features, 17)
        Non-negative counts (or weights); every feature needs a positive total.

    Returns
    -------
    distances : ndarray of shape (n_features,), in value units (0..16)
        ``sum_v |F_ref(v) - F_cur(v)|`` over v = 0..15, F the cumulative distributions.
        Equals ``scipy.stats.wasserstein_distance`` on the raw samples.
    """
    ref = _proportions(_check_counts(reference_counts, "reference_counts"), "reference_counts")
    cur = _proportions(_check_counts(current_counts, "current_counts"), "current_counts")
    if ref.shape != cur.shape:
        raise ValueError(f"shapes differ: reference {ref.shape}, current {cur.shape}")
    cdf_gap = np.cumsum(ref, axis=1) - np.cumsum(cur, axis=1)
    # The last CDF values are both 1; dropping them avoids summing rounding noise.
    return np.abs(cdf_gap[:, :-1]).sum(axis=1)


def reference_scale(reference_counts, floor: float = SCALE_FLOOR) -> np.ndarray:
    """The spread each feature's W1 is divided by: ``max(std_ref, floor)``, shape (n_features,)."""
    if not floor > 0:
        raise ValueError(f"floor must be > 0, got {floor!r}")
    return np.maximum(histogram_stds(reference_counts), floor)


@dataclass(frozen=True)
class FeatureDrift:
    """Per-feature drift, each array of shape (n_features,).

    Attributes
    ----------
    wasserstein : exact W1 in value units.
    scale : the divisor, ``max(std_ref, SCALE_FLOOR)``.
    normalised : ``wasserstein / scale``.
    drifted : ``normalised >= threshold``.
    threshold : the feature threshold used.
    """

    wasserstein: np.ndarray
    scale: np.ndarray
    normalised: np.ndarray
    drifted: np.ndarray
    threshold: float


def feature_drift(
    reference_counts, current_counts, *, threshold: float = DEFAULT_THRESHOLDS.feature
) -> FeatureDrift:
    """W1, normalised W1 and the drifted flag for every feature (see the module docstring)."""
    distances = wasserstein_from_counts(reference_counts, current_counts)
    scale = reference_scale(reference_counts)
    normalised = distances / scale
    return FeatureDrift(
        wasserstein=distances,
        scale=scale,
        normalised=normalised,
        drifted=normalised >= threshold,
        threshold=threshold,
    )


# --- Overall -------------------------------------------------------------------------------------
def overall_score(normalised) -> float:
    """Mean normalised W1 over the features."""
    normalised = np.asarray(normalised, dtype=np.float64)
    if normalised.size == 0:
        raise ValueError("no features to score")
    return float(normalised.mean())


def drifted_share(drifted) -> float:
    """Share (0..1) of features flagged as drifted."""
    drifted = np.asarray(drifted, dtype=bool)
    if drifted.size == 0:
        raise ValueError("no features to count")
    return float(drifted.mean())


def severity_for(share: float, thresholds: DriftThresholds = DEFAULT_THRESHOLDS) -> str:
    """``none``, ``warning`` or ``critical`` from the share of drifted features."""
    if share >= thresholds.critical_share:
        return "critical"
    if share >= thresholds.warning_share:
        return "warning"
    return "none"


def status_for(n_current: int, severity: str, min_samples: int) -> str:
    """``insufficient_data`` below ``min_samples`` live inputs, else ``drift`` or ``ok``."""
    if n_current < min_samples:
        return "insufficient_data"
    return "ok" if severity == "none" else "drift"


@dataclass(frozen=True)
class ClassMixShift:
    """Predicted-class mix against the training class mix.

    Attributes
    ----------
    reference, current : ndarray of shape (10,)
        Proportions of each class (``current`` is all zeros with no live data).
    total_variation : float or None
        Half the L1 distance between the two, 0..1; None with no live data.
    """

    reference: np.ndarray
    current: np.ndarray
    total_variation: float | None


def class_mix_shift(reference_class_counts, current_class_counts) -> ClassMixShift:
    """Total variation distance between the training class mix and the predicted mix."""
    ref = np.asarray(reference_class_counts, dtype=np.float64)
    cur = np.asarray(current_class_counts, dtype=np.float64)
    if ref.shape != (N_CLASSES,) or cur.shape != (N_CLASSES,):
        raise ValueError(
            f"class counts must have shape ({N_CLASSES},), got {ref.shape} and {cur.shape}"
        )
    if ref.min() < 0 or cur.min() < 0 or ref.sum() <= 0:
        raise ValueError("class counts must be non-negative, the reference ones not all zero")
    ref_p = ref / ref.sum()
    if cur.sum() <= 0:
        return ClassMixShift(reference=ref_p, current=np.zeros(N_CLASSES), total_variation=None)
    cur_p = cur / cur.sum()
    return ClassMixShift(
        reference=ref_p, current=cur_p, total_variation=float(0.5 * np.abs(ref_p - cur_p).sum())
    )


@dataclass(frozen=True)
class ConfidenceShift:
    """Mean model confidence now against a reference window (None where unknown)."""

    current_mean: float | None
    reference_mean: float | None
    shift: float | None


def confidence_shift(current_mean: float | None, reference_mean: float | None) -> ConfidenceShift:
    """``shift = current_mean - reference_mean`` (negative: the model is less sure now)."""
    for name, value in (("current_mean", current_mean), ("reference_mean", reference_mean)):
        if value is not None and not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    shift = None
    if current_mean is not None and reference_mean is not None:
        shift = float(current_mean - reference_mean)
    return ConfidenceShift(current_mean=current_mean, reference_mean=reference_mean, shift=shift)


# --- The whole comparison ------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingReference:
    """What the training statistics say, validated.

    Attributes
    ----------
    value_counts : ndarray of shape (64, 17), int64
    class_counts : ndarray of shape (10,), int64
    n_samples : int
    """

    value_counts: np.ndarray
    class_counts: np.ndarray
    n_samples: int


@dataclass(frozen=True)
class DriftResult:
    """Everything one comparison found. ``features`` is None when there is no live data."""

    status: str
    severity: str
    score: float | None
    drifted_share: float | None
    n_reference: int
    n_current: int
    features: FeatureDrift | None
    reference_means: np.ndarray
    current_means: np.ndarray | None
    class_mix: ClassMixShift
    confidence: ConfidenceShift
    thresholds: DriftThresholds = field(default=DEFAULT_THRESHOLDS)

    @property
    def severity_code(self) -> int:
        return SEVERITY_CODES[self.severity]


def compare(
    reference: TrainingReference,
    current_counts,
    current_class_counts,
    *,
    current_confidence_mean: float | None = None,
    reference_confidence_mean: float | None = None,
    thresholds: DriftThresholds = DEFAULT_THRESHOLDS,
) -> DriftResult:
    """Compare live histograms with the training reference and decide status and severity.

    Parameters
    ----------
    reference : TrainingReference
    current_counts : array-like of shape (64, 17)
        Live value counts; all rows add up to the number of live inputs (may be 0).
    current_class_counts : array-like of shape (10,)
        How often each digit was predicted in the window.
    current_confidence_mean, reference_confidence_mean : float or None
        Mean confidence in the window and in the reference window.
    thresholds : DriftThresholds

    Returns
    -------
    DriftResult
    """
    current = _check_counts(current_counts, "current_counts")
    if current.shape != reference.value_counts.shape:
        raise ValueError(
            f"shapes differ: reference {reference.value_counts.shape}, current {current.shape}"
        )
    totals = current.sum(axis=1)
    if np.any(totals != totals[0]):
        raise ValueError("every feature's live counts must add up to the same number of inputs")
    n_current = int(totals[0])
    mix = class_mix_shift(reference.class_counts, current_class_counts)
    confidence = confidence_shift(current_confidence_mean, reference_confidence_mean)
    reference_means = histogram_means(reference.value_counts)
    if n_current == 0:
        return DriftResult(
            status="insufficient_data",
            severity="none",
            score=None,
            drifted_share=None,
            n_reference=reference.n_samples,
            n_current=0,
            features=None,
            reference_means=reference_means,
            current_means=None,
            class_mix=mix,
            confidence=confidence,
            thresholds=thresholds,
        )
    features = feature_drift(reference.value_counts, current, threshold=thresholds.feature)
    share = drifted_share(features.drifted)
    severity = severity_for(share, thresholds)
    status = status_for(n_current, severity, thresholds.min_samples)
    if status == "insufficient_data":
        severity = "none"  # too few inputs to raise an alarm, whatever the numbers say
    return DriftResult(
        status=status,
        severity=severity,
        score=overall_score(features.normalised),
        drifted_share=share,
        n_reference=reference.n_samples,
        n_current=n_current,
        features=features,
        reference_means=reference_means,
        current_means=histogram_means(current),
        class_mix=mix,
        confidence=confidence,
        thresholds=thresholds,
    )
