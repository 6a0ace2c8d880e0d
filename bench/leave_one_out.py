"""Leave one out: train without a source or a UNIPEN group, read what was left out as uploads.

The shipped model's training rows are drawn once; each run then fits the whole recipe
(vote, weights, seeds, temperature) on those rows minus the left-out ones and sends every
left-out digit through the upload path (drawn as image bytes, decoded and preprocessed like
an upload) and scores the answers: how the model reads writers whose handwriting it never
saw. Semeion is never used.

- ``--source optdigits`` / ``sklearn``: the source's digits in the five styles of
  ``predicciones.ml.synth``. The temperature of a model trained without ``load_digits`` is
  still fitted on its second half (the recipe's calibration writers), so for that run the
  mean confidence is also reported on the first half alone (writers that served neither
  training nor calibration).
- ``--groups``: each UNIPEN group (by default all ten: aga, apa, apb, app, art, ced, gmd,
  ibm, syn, uqb) left out of training and of the calibration writers, and all its digits
  read in the five styles and on the page's canvas (``PEN_STYLES``).

Usage: python -m bench.leave_one_out [--source optdigits sklearn] [--groups [G ...]]
       [--jobs 2] [--out var/leave_one_out.txt]
(the rows are drawn once, then the recipe is fitted once per source and per group)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from harness.paths import REPO_DIR as REPO
from predicciones.ml import sources, splits, training
from predicciones.ml.classifier import predict
from predicciones.ml.synth import PEN_STYLES, STYLES
from predicciones.ml.validation import styled_features

#: Seed of the left-out digits' renderings (style k of digit i: default_rng([SEED, i, k])).
SEED = 4242
LOADERS = {"optdigits": sources.load_optdigits, "sklearn": sources.load_sklearn_digits}
GROUPS = ("aga", "apa", "apb", "app", "art", "ced", "gmd", "ibm", "syn", "uqb")


def read_as_uploads(source: str, jobs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features (n, 5, 64), accepted (n, 5) and labels (n,) of a source's digits."""
    X, y = LOADERS[source]()
    return (*styled_features(X, np.arange(len(y)), seed=SEED, n_jobs=jobs), y)


def unipen_as_uploads(index: np.ndarray, jobs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features (n, 6, 64), accepted (n, 6) and labels (n,) of the UNIPEN digits ``index``.

    Digit i is drawn from its own seed whichever others are drawn with it.
    """
    unipen = sources.load_unipen()
    ids = splits.ID_OFFSET["unipen"] + index
    features, accepted = styled_features(
        unipen.traces[index], ids, seed=SEED, styles=PEN_STYLES, n_jobs=jobs
    )
    return features, accepted, unipen.labels[index]


def score(clf, F: np.ndarray, ok: np.ndarray, y: np.ndarray, styles) -> tuple[list[str], dict]:
    """Lines of a per-style table, and the overall accuracy and mean confidence."""
    n, k = ok.shape
    pred, conf = predict(clf, F.reshape(-1, 64))
    pred, conf = pred.reshape(n, k), conf.reshape(n, k)
    right = (pred == y[:, None]) & ok
    lines = [f"  {'style':<12}{'accuracy':>9}{'mean conf':>11}{'refused':>9}"]
    for j, style in enumerate(styles):
        lines.append(
            f"  {style:<12}{right[:, j].mean():>9.4f}{conf[:, j].mean():>11.4f}"
            f"{int((~ok[:, j]).sum()):>9}"
        )
    lines.append(f"  {'overall':<12}{right.mean():>9.4f}{conf.mean():>11.4f}{int((~ok).sum()):>9}")
    return lines, {"right": right, "conf": conf}


def fit(rows, weight, keep, calibration, seed):
    X_cal, y_cal, _ = calibration
    return training.fit_classifier(
        rows.X[keep],
        rows.y[keep],
        seed=seed,
        calibration=(X_cal, y_cal),
        sample_weight=weight[keep],
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", nargs="*", default=list(LOADERS), choices=list(LOADERS))
    parser.add_argument("--groups", nargs="*", default=list(GROUPS), choices=list(GROUPS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(REPO / "var" / "leave_one_out.txt"))
    args = parser.parse_args(argv)
    started = time.monotonic()
    rows, weight = training.training_rows(seed=args.seed, n_jobs=args.jobs)
    calibration = splits.calibration_uploads(n_jobs=args.jobs, with_ids=True)
    row_sources, row_groups = splits.source_of(rows.ids), splits.unipen_group(rows.ids)
    lines = [f"training rows drawn once: {len(rows)} ({time.monotonic() - started:.0f} s)"]
    print(lines[0], flush=True)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def emit(new: list[str]) -> None:
        """Print the lines and rewrite the file with every line so far (a run cut short
        keeps what it measured)."""
        lines.extend(new)
        print("\n".join(new), flush=True)
        out.write_text("\n".join(lines) + "\n")

    for source in args.source:
        begun = time.monotonic()
        clf = fit(rows, weight, row_sources != source, calibration, args.seed)
        F, ok, y = read_as_uploads(source, args.jobs)
        table, result = score(clf, F, ok, y, STYLES)
        kept = " + ".join(s for s in splits.SOURCES if s != source)
        head = f"trained on {kept}, read {source} ({len(y)} digits) as uploads"
        emit([f"{head} ({time.monotonic() - begun:.0f} s):", *table])
        if source == "sklearn":
            first = np.arange(len(y)) < splits.CALIBRATION_START
            emit(
                [
                    f"  {'first half':<12}{result['right'][first].mean():>9.4f}"
                    f"{result['conf'][first].mean():>11.4f}"
                    "   (writers used neither to train nor to calibrate)"
                ]
            )
    if args.groups:
        unipen = sources.load_unipen()
        drawn = np.flatnonzero(np.isin(unipen.group, args.groups))
        F, ok, y = unipen_as_uploads(drawn, args.jobs)
        digit_groups = unipen.group[drawn]
        cal_groups = splits.unipen_group(calibration[2])
        summary = [f"  {'group':<8}{'digits':>7}{'writers':>8}{'accuracy':>9}{'mean conf':>11}"]
        for group in args.groups:
            begun = time.monotonic()
            keep_cal = cal_groups != group
            clf = fit(
                rows,
                weight,
                row_groups != group,
                tuple(part[keep_cal] for part in calibration),
                args.seed,
            )
            inside = digit_groups == group
            table, result = score(clf, F[inside], ok[inside], y[inside], PEN_STYLES)
            writers = len(set(unipen.writer[drawn][inside]))
            head = f"trained without UNIPEN group {group}, read its {inside.sum()} digits"
            emit([f"{head} ({writers} writers) as uploads ({time.monotonic() - begun:.0f} s):"])
            emit(table)
            summary.append(
                f"  {group:<8}{int(inside.sum()):>7}{writers:>8}"
                f"{result['right'].mean():>9.4f}{result['conf'].mean():>11.4f}"
            )
        emit(["UNIPEN, each group left out (all its digits, six styles):", *summary])
    emit([f"leave_one_out took {time.monotonic() - started:.0f} s"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
