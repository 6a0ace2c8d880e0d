"""Mergeable summaries of logged predictions: what an hour of the log holds, in a few KiB.

A :class:`LogSummary` adds up exactly: the summary of two sets of rows is the sum of their
summaries, whatever the order or the grouping. Everything in it is an integer count, so a
drift window computed from hourly summaries plus raw rows is identical, to the last digit,
to the one computed from the raw rows alone:

- the 64 x 17 feature histogram and the predicted-class counts (the drift inputs);
- the confidence sum, kept exactly as an integer number of ``2**-53`` units: each
  confidence (a probability, 0..1) is rounded down to a whole unit, which is exact for
  confidences of 0.5 and above and within ``2**-53`` below (a database computes the same
  units in SQL: ``floor(c * 2**53)`` is exact in double precision); the mean is then one
  correctly rounded division, the same for any grouping (a float sum would depend on the
  order);
- model-side latency counted in fixed, roughly 19 % wide buckets (quantiles from those);
- how many rows had a true label, and how many of those the model got right;
- the first and last ``created_at``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from .drift import value_counts
from .features import N_CLASSES, N_FEATURES, N_VALUES

#: Confidences are summed as integers in units of 2**-CONFIDENCE_BITS.
CONFIDENCE_BITS = 53
#: The units are summed as high and low halves: int64 partial sums that never overflow.
HALF_BITS = 26
#: Upper bounds (ms) of the latency buckets: 0.05 ms to about 60 s, four per doubling.
LATENCY_BOUNDS_MS = tuple(float(0.05 * 2 ** (k / 4)) for k in range(82))
#: One bucket per bound, plus the last for anything slower.
N_LATENCY_BUCKETS = len(LATENCY_BOUNDS_MS) + 1
#: Quantiles reported beside the latency histogram.
LATENCY_QUANTILES = (0.5, 0.9, 0.99)


def confidence_units(confidences) -> int:
    """Exact sum of confidences in units of ``2**-53``.

    Parameters
    ----------
    confidences : array-like of shape (n_samples,), floats in [0, 1]

    Returns
    -------
    units : int
        ``sum(floor(c * 2**53))``, a Python int (never overflows).
    """
    c = np.asarray(confidences, dtype=np.float64)
    if c.size == 0:
        return 0
    if not (np.all(np.isfinite(c)) and c.min() >= 0.0 and c.max() <= 1.0):
        raise ValueError("confidences must be probabilities in [0, 1]")
    q = np.floor(np.ldexp(c, CONFIDENCE_BITS)).astype(np.int64)
    high = int(np.sum(q >> HALF_BITS, dtype=np.int64))
    low = int(np.sum(q & ((1 << HALF_BITS) - 1), dtype=np.int64))
    return units_from_halves(high, low)


def units_from_halves(high_sum: int, low_sum: int) -> int:
    """The exact unit sum from the sums of ``units >> 26`` and ``units & (2**26 - 1)``."""
    return (int(high_sum) << HALF_BITS) + int(low_sum)


def confidence_mean(units: int, n: int) -> float | None:
    """The mean confidence from its exact sum: one correctly rounded division (None if n is 0)."""
    if n == 0:
        return None
    return units / (n << CONFIDENCE_BITS)


def latency_counts(latency_ms) -> np.ndarray:
    """Count model-side latencies into the fixed buckets.

    Parameters
    ----------
    latency_ms : array-like of shape (n_samples,), milliseconds >= 0

    Returns
    -------
    counts : ndarray of shape (N_LATENCY_BUCKETS,), int64
        ``counts[k]`` holds latencies in ``(bound[k-1], bound[k]]``; the last bucket
        everything above the last bound.
    """
    latency = np.asarray(latency_ms, dtype=np.float64)
    index = np.searchsorted(LATENCY_BOUNDS_MS, latency, side="left")
    return np.bincount(index, minlength=N_LATENCY_BUCKETS).astype(np.int64)


def latency_quantiles(counts, quantiles=LATENCY_QUANTILES) -> dict[str, float | None]:
    """Quantiles (ms) read from a latency histogram: each is the upper bound of the bucket
    it falls in (at most about 19 % above the true value; the top bucket reports its lower
    bound). None for an empty histogram."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    result = {}
    for q in quantiles:
        name = f"p{round(q * 100):d}"
        if total == 0:
            result[name] = None
            continue
        k = int(np.searchsorted(np.cumsum(counts), q * total, side="left"))
        k = min(k, len(LATENCY_BOUNDS_MS) - 1)
        result[name] = round(LATENCY_BOUNDS_MS[k], 4)
    return result


@dataclass
class LogSummary:
    """The additive summary of a set of logged predictions (see the module docstring).

    Attributes
    ----------
    n : int
        Rows summarised.
    value_counts : ndarray of shape (64, 17), int64
    class_counts : ndarray of shape (10,), int64
    confidence_units : int
        Exact confidence sum in units of ``2**-53``.
    latency_counts : ndarray of shape (N_LATENCY_BUCKETS,), int64
    labelled, correct : int
        Rows with a true label; those whose prediction equals it.
    first, last : datetime or None
        Earliest and latest ``created_at``.
    """

    n: int = 0
    value_counts: np.ndarray = field(
        default_factory=lambda: np.zeros((N_FEATURES, N_VALUES), dtype=np.int64)
    )
    class_counts: np.ndarray = field(default_factory=lambda: np.zeros(N_CLASSES, dtype=np.int64))
    confidence_units: int = 0
    latency_counts: np.ndarray = field(
        default_factory=lambda: np.zeros(N_LATENCY_BUCKETS, dtype=np.int64)
    )
    labelled: int = 0
    correct: int = 0
    first: dt.datetime | None = None
    last: dt.datetime | None = None

    @property
    def confidence_mean(self) -> float | None:
        return confidence_mean(self.confidence_units, self.n)

    def add(self, other: LogSummary) -> LogSummary:
        """Fold ``other`` into this summary (in place) and return it."""
        self.n += other.n
        self.value_counts += other.value_counts
        self.class_counts += other.class_counts
        self.confidence_units += other.confidence_units
        self.latency_counts += other.latency_counts
        self.labelled += other.labelled
        self.correct += other.correct
        self.first = _earliest(self.first, other.first)
        self.last = _latest(self.last, other.last)
        return self

    def add_block(
        self,
        features,
        predictions,
        confidences,
        *,
        latency_ms=None,
        labels=None,
        first: dt.datetime | None = None,
        last: dt.datetime | None = None,
    ) -> LogSummary:
        """Fold a block of rows into this summary (in place) and return it.

        Parameters
        ----------
        features : array-like of shape (n_samples, 64), integers 0..16
        predictions : array-like of shape (n_samples,), digits 0..9
        confidences : array-like of shape (n_samples,), floats in [0, 1]
        latency_ms : array-like of shape (n_samples,), optional
        labels : sequence of shape (n_samples,) with int or None, optional
        first, last : datetime, optional
            The block's earliest and latest ``created_at``.
        """
        X = np.asarray(features)
        n_samples = len(X)
        if n_samples == 0:
            return self
        predicted = np.asarray(predictions, dtype=np.int64)
        if predicted.shape != (n_samples,):
            raise ValueError(f"predictions must have shape ({n_samples},), got {predicted.shape}")
        if predicted.min() < 0 or predicted.max() >= N_CLASSES:
            raise ValueError(f"predictions must be digits 0..{N_CLASSES - 1}")
        self.value_counts += value_counts(X)
        self.class_counts += np.bincount(predicted, minlength=N_CLASSES)
        self.confidence_units += confidence_units(confidences)
        if latency_ms is not None:
            self.latency_counts += latency_counts(latency_ms)
        if labels is not None:
            for label, p in zip(labels, predicted.tolist(), strict=True):
                if label is not None:
                    self.labelled += 1
                    self.correct += int(label == p)
        self.n += n_samples
        self.first = _earliest(self.first, first)
        self.last = _latest(self.last, last)
        return self

    def to_dict(self) -> dict:
        """A JSON-ready document (the exact confidence sum as a decimal string)."""
        return {
            "n": self.n,
            "value_counts": self.value_counts.tolist(),
            "class_counts": self.class_counts.tolist(),
            "confidence_units": str(self.confidence_units),
            "confidence_unit": f"2**-{CONFIDENCE_BITS}",
            "confidence_mean": self.confidence_mean,
            "latency_bounds_ms": list(LATENCY_BOUNDS_MS),
            "latency_counts": self.latency_counts.tolist(),
            "latency_ms": latency_quantiles(self.latency_counts),
            "labelled": self.labelled,
            "correct": self.correct,
            "first_created_at": _iso(self.first),
            "last_created_at": _iso(self.last),
        }


def _earliest(a, b):
    return b if a is None else a if b is None else min(a, b)


def _latest(a, b):
    return b if a is None else a if b is None else max(a, b)


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
