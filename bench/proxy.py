"""Model-selection proxy: writer-disjoint halves of ``load_digits`` sent as uploads.

Semeion is for the final report only, so choices between preprocessing variants,
augmentations and classifiers are made here. ``load_digits`` is ordered by writer: its
first and second halves (898 / 899 digits) come from different people. Each fold trains
on one half (rendered, distorted and preprocessed exactly as the shipped model's training
rows) and scores the other half rendered in the five upload styles of
:mod:`predicciones.ml.synth` (scan, photo, mnist, marker, ballpoint), decoded and
preprocessed from the image bytes like an upload. The first fold's clean renderings are
also scored: that is the scikit-learn example split.

Rendered uploads are cached (they do not depend on the preprocessing); features and
training rows are cached under ``--tag`` (give a new tag when preprocessing changes).

Usage: python bench/proxy.py [--tag T] [--n-augment N] [--dist trace=0.5,...]
                             [--model default|svc:C=..,gamma=..|mlp:hidden=256|svcsqrt]

Its noise: 4,495 upload predictions per run (about +-0.3 point), 899 for the split (+-0.5).
README.md, "Model quality", says what it was used for and what was not shipped.
"""

from __future__ import annotations

import argparse
import dataclasses
import pickle
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "digits_model"))

from evaluate import reliability  # noqa: E402  (bench/evaluate.py, beside this script)

from predicciones.ml import training  # noqa: E402
from predicciones.ml.augment import DEFAULT_DISTORTION, Distortion  # noqa: E402
from predicciones.ml.classifier import predict  # noqa: E402
from predicciones.ml.datasets import load_base_data  # noqa: E402
from predicciones.ml.exceptions import ImageError  # noqa: E402
from predicciones.ml.preprocessing import preprocess  # noqa: E402
from predicciones.ml.synth import STYLES, render  # noqa: E402

CACHE = REPO / "var" / "proxy-cache"
#: Seed of the proxy's upload renderings (style k uses default_rng([SEED, k, half])).
SEED = 777


def halves() -> tuple[np.ndarray, np.ndarray]:
    n = len(load_base_data()[1])
    index = np.arange(n)
    return index[: n // 2], index[n // 2 :]


def _cached(name: str, make):
    path = CACHE / f"{name}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    value = make()
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    return value


def _render_half(args):
    half, style_index, indices = args
    X, _ = load_base_data()
    rng = np.random.default_rng([SEED, style_index, half])
    return [render(X[i], STYLES[style_index], rng) for i in indices]


def uploads(jobs: int) -> dict:
    """{(half, style): list of image bytes} for both halves and every style."""

    def make():
        from joblib import Parallel, delayed

        tasks = [(h, k, idx) for h, idx in enumerate(halves()) for k in range(len(STYLES))]
        out = Parallel(n_jobs=jobs)(delayed(_render_half)(t) for t in tasks)
        return {(h, STYLES[k]): o for (h, k, _), o in zip(tasks, out, strict=True)}

    return _cached(f"uploads-{SEED}", make)


def _preprocess_all(datas):
    rows, ok = [], []
    for data in datas:
        try:
            rows.append(preprocess(data).features)
            ok.append(True)
        except ImageError:
            rows.append(np.zeros(64, np.uint8))
            ok.append(False)
    return np.array(rows), np.array(ok)


def upload_features(tag: str, jobs: int) -> dict:
    def make():
        from joblib import Parallel, delayed

        ups = uploads(jobs)
        keys = list(ups)
        out = Parallel(n_jobs=jobs)(delayed(_preprocess_all)(ups[k]) for k in keys)
        return dict(zip(keys, out, strict=True))

    return _cached(f"upfeat-{tag}", make)


def parse_distortion(text: str) -> Distortion:
    """'trace=0.5,elastic=0.03' -> Distortion with those fields changed."""
    if not text:
        return DEFAULT_DISTORTION
    kw = {}
    for item in text.split(","):
        key, value = item.split("=")
        kw[key] = tuple(float(v) for v in value.split(":")) if ":" in value else float(value)
        if key in ("min_height", "max_height"):
            kw[key] = int(kw[key])
    return dataclasses.replace(DEFAULT_DISTORTION, **kw)


def train_rows(tag: str, half: int, n_augment: int, jobs: int, seed: int = 0, dist: str = ""):
    def make():
        return training.normalised_base_data(
            seed=seed,
            n_augment=n_augment,
            n_jobs=jobs,
            indices=halves()[half],
            distortion=parse_distortion(dist),
        )

    suffix = f"-{dist}" if dist and n_augment else ""
    return _cached(f"train-{tag}-h{half}-a{n_augment}-s{seed}{suffix}", make)


def _params(text: str) -> dict:
    out = {}
    for item in filter(None, text.split(",")):
        key, value = item.split("=")
        if ":" in value:
            out[key] = tuple(int(v) for v in value.split(":"))
        else:
            try:
                out[key] = int(value)
            except ValueError:
                out[key] = float(value)
    return out


def fit(model: str, X, y, groups, seed: int):
    """``default``, ``svc:C=..,gamma=..`` (the shipped kind), ``mlp:hidden=256:128,...``."""
    name, _, rest = model.partition(":")
    params = _params(rest)
    if name in ("default", "svc"):
        return training.fit_classifier(X, y, groups, seed=seed, **params)
    if name == "svcsqrt":
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import FunctionTransformer
        from sklearn.svm import SVC

        half = training.N_BASE // 2
        first = groups < half
        folds = [(np.flatnonzero(first), np.flatnonzero(~first))]
        folds.append(folds[0][::-1])
        if first.all() or not first.any():
            from sklearn.model_selection import GroupKFold

            folds = list(GroupKFold(n_splits=3).split(X, y, groups))
        pipe = make_pipeline(
            FunctionTransformer(np.sqrt),
            OneVsRestClassifier(SVC(C=params.get("C", 3.0), gamma=params.get("gamma", 0.025))),
        )
        clf = CalibratedClassifierCV(pipe, method="temperature", cv=folds, ensemble=False)
        return clf.fit(X, y)
    if name == "mlp":
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.model_selection import GroupKFold
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        hidden = params.pop("hidden", (256,))
        hidden = hidden if isinstance(hidden, tuple) else (hidden,)
        mlp = MLPClassifier(
            hidden_layer_sizes=hidden,
            alpha=params.pop("alpha", 1e-3),
            max_iter=params.pop("iter", 60),
            batch_size=params.pop("batch", 128),
            learning_rate_init=params.pop("lr", 1e-3),
            random_state=seed,
            early_stopping=False,
            **params,
        )
        pipe = make_pipeline(StandardScaler(), mlp)
        if "nocal" in model:
            return pipe.fit(X, y)
        folds = list(GroupKFold(n_splits=2).split(X, y, groups))
        clf = CalibratedClassifierCV(pipe, method="temperature", cv=folds, ensemble=False)
        return clf.fit(X, y)
    raise ValueError(model)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", default="current")
    parser.add_argument("--n-augment", type=int, default=training.N_AUGMENT)
    parser.add_argument("--model", default="default")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dist", default="", help="Distortion overrides, e.g. trace=0.5")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    started = time.monotonic()
    feats = upload_features(args.tag, args.jobs)
    _, y_all = load_base_data()
    per_style = {s: [] for s in STYLES}
    confs, hits = [], []
    split = None
    for half in (0, 1):
        X, y, groups, _ = train_rows(
            args.tag, half, args.n_augment, args.jobs, args.seed, args.dist
        )
        t = time.monotonic()
        clf = fit(args.model, X, y, groups, args.seed)
        fit_s = time.monotonic() - t
        other = halves()[1 - half]
        labels = y_all[other]
        if half == 0:
            Xc, yc, _, _ = train_rows(args.tag, 1, 0, args.jobs, args.seed)
            split = float((predict(clf, Xc)[0] == yc).mean())
        for style in STYLES:
            rows, ok = feats[(1 - half, style)]
            pred, conf = predict(clf, rows)
            hit = (pred == labels) & ok
            per_style[style].append(hit)
            confs.append(conf)
            hits.append(hit)
        if args.verbose:
            print(f"fold {half}: {len(X)} rows, fit {fit_s:.0f} s", file=sys.stderr)
    conf, hit = np.concatenate(confs), np.concatenate(hits)
    style_acc = {s: float(np.concatenate(v).mean()) for s, v in per_style.items()}
    cells = " ".join(f"{s} {a:.4f}" for s, a in style_acc.items())
    print(
        f"[{args.tag} a{args.n_augment} {args.model} {args.dist}] proxy {cells} | "
        f"overall {hit.mean():.4f} "
        f"min {min(style_acc.values()):.4f} | split {split:.4f} | "
        f"conf-acc {conf.mean() - hit.mean():+.4f} | {time.monotonic() - started:.0f} s"
    )
    if args.verbose:
        print("\n".join(reliability(conf, hit)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
