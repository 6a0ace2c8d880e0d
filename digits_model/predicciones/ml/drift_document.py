"""Drift as JSON: a report as commands, the store and the dashboard read it, and a version's
training statistics read back into a validated reference."""

from __future__ import annotations

import datetime as dt

import numpy as np

from .drift import DriftResult, TrainingReference
from .features import N_CLASSES, N_FEATURES, N_VALUES


def training_reference(statistics: dict) -> TrainingReference:
    """Validate a training-statistics document (``ml.training.training_statistics``'s format).

    Raises
    ------
    ValueError
        Naming the first thing that is wrong with the document.
    """
    if not isinstance(statistics, dict):
        raise ValueError(f"expected a JSON object, got {type(statistics).__name__}")
    try:
        counts = np.asarray(statistics["value_counts"], dtype=np.float64)
        classes = np.asarray(statistics["class_counts"], dtype=np.float64)
    except KeyError as exc:
        raise ValueError(f"missing {exc.args[0]!r}") from None
    except (TypeError, ValueError):
        raise ValueError("value_counts and class_counts must be lists of numbers") from None
    if counts.shape != (N_FEATURES, N_VALUES):
        raise ValueError(
            f"value_counts must be {N_FEATURES} lists of {N_VALUES} counts, got shape "
            f"{counts.shape}"
        )
    if classes.shape != (N_CLASSES,):
        raise ValueError(f"class_counts must be {N_CLASSES} counts, got shape {classes.shape}")
    for name, array in (("value_counts", counts), ("class_counts", classes)):
        if not np.all(np.isfinite(array)) or array.min() < 0 or np.any(array != np.rint(array)):
            raise ValueError(f"{name} must hold non-negative integers")
    totals = counts.sum(axis=1)
    n_samples = int(statistics.get("n_samples", totals[0]))
    if n_samples <= 0 or np.any(totals != n_samples):
        raise ValueError(
            f"every feature's counts must add up to n_samples={n_samples} "
            f"(got totals from {int(totals.min())} to {int(totals.max())})"
        )
    return TrainingReference(
        value_counts=counts.astype(np.int64),
        class_counts=classes.astype(np.int64),
        n_samples=n_samples,
    )


def result_document(result: DriftResult) -> dict:
    """A JSON-ready summary (the caller adds model, version, window and ids)."""
    return {
        "status": result.status,
        "severity": result.severity,
        "severity_code": result.severity_code,
        "score": result.score,
        "drifted_share": result.drifted_share,
        "n_drifted": None if result.features is None else int(result.features.drifted.sum()),
        "n_reference": result.n_reference,
        "n_current": result.n_current,
        "thresholds": result.thresholds.to_dict(),
        "prediction_mix": {
            "reference": [round(float(v), 6) for v in result.class_mix.reference],
            "current": [round(float(v), 6) for v in result.class_mix.current],
            "total_variation": result.class_mix.total_variation,
        },
        "confidence": {
            "current_mean": result.confidence.current_mean,
            "reference_mean": result.confidence.reference_mean,
            "shift": result.confidence.shift,
        },
        "features": feature_rows(result),
    }


def feature_rows(result: DriftResult) -> list[dict]:
    """One dict per feature: index, 8x8 position, W1, scale, normalised, drifted, means."""
    rows = []
    for j in range(len(result.reference_means)):
        row = {
            "feature": j,
            "row": j // 8,
            "col": j % 8,
            "wasserstein": None,
            "scale": None,
            "normalised": None,
            "drifted": False,
            "reference_mean": round(float(result.reference_means[j]), 4),
            "current_mean": None,
        }
        if result.features is not None:
            row.update(
                wasserstein=float(result.features.wasserstein[j]),
                scale=round(float(result.features.scale[j]), 6),
                normalised=float(result.features.normalised[j]),
                drifted=bool(result.features.drifted[j]),
                current_mean=round(float(result.current_means[j]), 4),
            )
        rows.append(row)
    return rows


def report_document(
    *,
    report_uid: str,
    created_at: dt.datetime,
    model: str,
    version: int,
    model_sha256: str,
    window: dict,
    store_key: str | None,
    result: DriftResult,
    sources: dict,
) -> dict:
    """A drift report as ``check_drift --json`` prints it and the store keeps it: which check,
    of which version, over which window (:func:`window_document`), where it is stored, its
    result (:func:`result_document`) and how the window was read (``sources``)."""
    return {
        "report_uid": report_uid,
        "created_at": created_at.isoformat(),
        "model": model,
        "version": version,
        "model_sha256": model_sha256,
        "window": window,
        "store_key": store_key,
        **result_document(result),
        "sources": sources,
    }


def window_document(
    *,
    last: int | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
) -> dict:
    """A report's window: the ``last`` N predictions or those ``since`` a time, up to
    ``until``; ``start`` and ``end`` are its first and last prediction's times."""
    return {
        "kind": "last" if last is not None else "since",
        "last": last,
        "since": _iso(since),
        "until": _iso(until),
        "start": _iso(start),
        "end": _iso(end),
        "confidence_reference": (
            f"the {last} predictions before the window"
            if last is not None
            else "the same duration before --since"
        ),
    }


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
