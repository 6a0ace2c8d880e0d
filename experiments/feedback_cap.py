"""What the per-source cap on feedback leaves an honest population and an attacker.

``DIGITS_FEEDBACK_SOURCE_CAP`` keeps at most K labels of any one untrusted source in a
retrain's training rows. This trains quick candidates (``train_model --quick``'s recipe) in
process, with the feedback of one source capped at K:

- **honest**: photos of seven-segment displays (the population ``test_retrain_pipeline.py``
  teaches), labelled truly; the gain on held-out display digits from a trusted labeller and
  the gate's verdict (base holdout plus those rows), as ``retrain`` would judge it;
- **attack**: X shapes labelled 7 (``test_feedback_attack.py``); the share of new X shapes
  the candidate reads as 7, and its accuracy on the base holdout.

One JSON object per candidate on stdout.

    python -m experiments.feedback_cap [--caps 25 50 100 400]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from harness.rendering import digits_data, render_upload, x_shape
from predicciones.ml import gate as gate_rules
from predicciones.ml import splits, training
from predicciones.ml.classifier import predict
from predicciones.ml.exceptions import ImageError
from predicciones.ml.feedback import cap_per_source
from predicciones.ml.preprocessing import preprocess


def features(uploads: list[tuple[bytes, int]]) -> tuple[np.ndarray, np.ndarray]:
    X, y = [], []
    for data, label in uploads:
        try:
            X.append(preprocess(data).features)
        except ImageError:
            continue
        y.append(label)
    return np.asarray(X, dtype=np.float64), np.asarray(y, dtype=int)


def displays(rows, seed: int) -> tuple[np.ndarray, np.ndarray]:
    X, y = digits_data()
    rng = np.random.default_rng(seed)
    return features(
        [(render_upload(X[i], rng=rng, style="segments", label=y[i]), int(y[i])) for i in rows]
    )


def xs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return features([(x_shape(rng=rng), 7) for _ in range(n)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--caps", type=int, nargs="+", default=[25, 50, 100, 400])
    args = parser.parse_args(argv)

    started = time.perf_counter()
    live, _ = training.train_classifier(seed=0, quick=True, n_jobs=2)
    X_base, y_base = splits.base_validation_set(n_jobs=2)
    # The honest source's labels (as test_retrain_pipeline sends them), a trusted labeller's
    # held-out rows, unseen display digits; the attacker's X shapes and new ones.
    X_honest, y_honest = displays(np.arange(0, 1200, 3), seed=1)
    X_trusted, y_trusted = displays(np.arange(2, 1797, 12), seed=3)
    X_unseen, y_unseen = displays(np.arange(1, 1797, 6), seed=2)
    X_attack, y_attack = xs(800, seed=1)
    X_new_x, _ = xs(100, seed=99)
    X_val = np.vstack([X_base, X_trusted])
    y_val = np.concatenate([y_base, y_trusted])
    judged = np.arange(len(y_val)) >= len(y_base)
    live_val = predict(live, X_val)[0]
    print(
        json.dumps(
            {
                "kind": "live",
                "base_accuracy": float((live_val[~judged] == y_base).mean()),
                "display_accuracy": float((predict(live, X_unseen)[0] == y_unseen).mean()),
                "x_read_as_7": float((predict(live, X_new_x)[0] == 7).mean()),
                "seconds": round(time.perf_counter() - started),
            }
        ),
        flush=True,
    )
    for kind, X_rows, y_rows in [("honest", X_honest, y_honest), ("attack", X_attack, y_attack)]:
        for cap in args.caps:
            keep = cap_per_source(["addr:203.0.113.5"] * len(y_rows), cap)
            started = time.perf_counter()
            clf, _ = training.train_classifier(
                seed=0, extra_X=X_rows[keep], extra_y=y_rows[keep], quick=True, n_jobs=2
            )
            cand_val = predict(clf, X_val)[0]
            result = gate_rules.evaluate_gate(y_val, live_val, cand_val, feedback=judged)
            row = {
                "kind": kind,
                "cap": cap,
                "rows_trained": int(keep.sum()),
                "gate_passed": result.passed,
                "gain_on_trusted_displays": result.improvement,
                "base_accuracy": float((cand_val[~judged] == y_base).mean()),
                "display_accuracy": float((predict(clf, X_unseen)[0] == y_unseen).mean()),
                "x_read_as_7": float((predict(clf, X_new_x)[0] == 7).mean()),
                "reasons": result.reasons,
                "seconds": round(time.perf_counter() - started),
            }
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
