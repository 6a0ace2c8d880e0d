"""How well decode + ink-finding read uploads as people really make them, per condition.

Each condition of :data:`predicciones.ml.synth.CONDITIONS` (tight crop, ruled and squared
notebook paper, pencil, a small digit in a 12 MP photo, JPEG quality 10, a tilted photo, an
out-of-focus photo), and each of the five everyday styles, is rendered from the same MNIST
digits of the validation slice (``index % 10 == 9``, never trained on), sent through
:func:`~predicciones.ml.preprocessing.preprocess` as bytes like an upload, and scored:

- ``refused``: uploads refused (``NoDigitError`` and the other ``ImageError``); must be ~0.
- ``acc``: accuracy of a *reference classifier*, an RBF SVC (C=10, gamma=0.0015) fitted in
  about 10 s on 20,000 MNIST digits outside the validation slice, each preprocessed from its
  28x28 array. It is trained without rotation or blur augmentation, so it measures the
  preprocessing, not the shipped model. A refused upload counts as wrong.
- ``twin``: the same classifier on each digit's *clean twin* (the same strokes at the same
  angle drawn plainly, :func:`~predicciones.ml.synth.clean_twin`), and ``scan``: on the same
  digits in the clean ``scan`` style. ``acc`` far below ``twin`` means the condition costs
  the preprocessing something.
- ``1-NN``: nearest-neighbour accuracy among the reference features (model-free).
- ``|d|`` and ``|d| p90``: mean absolute difference per cell (0..16 scale) between the
  upload's 64 features and its clean twin's, averaged over digits, and its 90th percentile
  (model-independent invariance; refused uploads are left out).
- ``shipped``: the committed ``model/clf.pickle`` (changes when the model is retrained).
- ``ms``: median preprocess time per upload (decode included) on this machine.

The reference features are cached under ``var/conditions/`` keyed by a hash of
``preprocessing.py`` and ``decoding.py``; the rendered uploads keyed by a hash of
``synth.py`` and ``augment.py``. The first run renders and preprocesses everything (about
ten minutes on 2 cores, most of it the 12 MP photos); later runs take a few minutes.

Usage: python -m experiments.conditions [--n 300] [--n-large 60] [--only tight,ruled] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
import time

import numpy as np

from harness.paths import REPO_DIR as REPO
from predicciones.ml.classifier import load_classifier, predict
from predicciones.ml.exceptions import ImageError
from predicciones.ml.preprocessing import preprocess
from predicciones.ml.sources import load_mnist
from predicciones.ml.synth import CONDITIONS, STYLES, render, render_condition

ML = REPO / "digits_model" / "predicciones" / "ml"
MODEL = REPO / "digits_model" / "model" / "clf.pickle"
CACHE = REPO / "var" / "conditions"
#: Seed of the renderings: condition or style k uses default_rng([SEED, k]).
SEED = 2026
#: MNIST digits the reference classifier is fitted on (outside the validation slice).
N_REFERENCE = 20_000


def source_hash(*names: str) -> str:
    digest = hashlib.sha256()
    for name in names:
        digest.update((ML / name).read_bytes())
    return digest.hexdigest()[:16]


def cached(name: str, make):
    path = CACHE / f"{name}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    value = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    tmp.replace(path)
    return value


def validation_index() -> np.ndarray:
    """MNIST indices of the validation slice, in a fixed shuffled order (every digit mixed)."""
    index = np.arange(9, len(load_mnist()[1]), 10)
    return np.random.default_rng(SEED).permutation(index)


def reference_features(prep_hash: str) -> tuple[np.ndarray, np.ndarray]:
    def make():
        images, labels = load_mnist()
        train = np.flatnonzero(np.arange(len(labels)) % 10 != 9)
        chosen = np.sort(np.random.default_rng(0).choice(train, N_REFERENCE, replace=False))
        X = np.array([preprocess(images[i] / np.float32(255)).features for i in chosen])
        return X, labels[chosen]

    return cached(f"reference-{prep_hash}", make)


def reference_classifier(X: np.ndarray, y: np.ndarray):
    from sklearn.svm import SVC

    return SVC(C=10, gamma=0.0015).fit(X.astype(np.float64), y)


def uploads(name: str, k: int, n: int, synth_hash: str) -> list[tuple[bytes, np.ndarray | None]]:
    """The first ``n`` validation digits rendered as ``name`` (bytes, and the twin if any)."""

    def make():
        images, _ = load_mnist()
        rng = np.random.default_rng([SEED, k])
        out = []
        for i in validation_index()[:n]:
            if name in CONDITIONS:
                out.append(render_condition(images[i], name, rng))
            else:
                out.append((render(images[i], name, rng), None))
        return out

    return cached(f"uploads-{name}-{n}-{synth_hash}", make)


def read(data) -> tuple[np.ndarray | None, float]:
    started = time.perf_counter()
    try:
        features = preprocess(data).features
    except ImageError:
        features = None
    return features, time.perf_counter() - started


def score(name, k, n, synth_hash, ref, nn, shipped, scan_hits) -> dict:
    labels = load_mnist()[1][validation_index()[:n]]
    rows, twins, times = [], [], []
    for data, twin in uploads(name, k, n, synth_hash):
        features, seconds = read(data)
        rows.append(features)
        times.append(seconds)
        twins.append(None if twin is None else preprocess(twin).features)
    ok = np.array([r is not None for r in rows])
    X = np.array([r if r is not None else np.zeros(64, np.uint8) for r in rows], np.float64)
    result = {
        "condition": name,
        "n": n,
        "refused": int((~ok).sum()),
        "acc": float(((ref.predict(X) == labels) & ok).mean()),
        "scan": float(scan_hits[:n].mean()),
        "nn": float(((nn.predict(X) == labels) & ok).mean()),
        "shipped": float(((predict(shipped, X)[0] == labels) & ok).mean()),
        "ms": float(np.median(times) * 1e3),
    }
    if twins[0] is not None:
        T = np.array(twins, np.float64)
        result["twin"] = float((ref.predict(T) == labels).mean())
        diff = np.abs(X - T).mean(axis=1)[ok]
        result["diff"] = float(diff.mean()) if diff.size else float("nan")
        result["diff_p90"] = float(np.percentile(diff, 90)) if diff.size else float("nan")
    return result


def table(results: list[dict]) -> str:
    head = (
        f"{'condition':<12}{'n':>5}{'refused':>8}{'acc':>7}{'twin':>7}{'scan':>7}"
        f"{'1-NN':>7}{'|d|':>7}{'|d| p90':>8}{'shipped':>8}{'ms':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        twin = f"{r['twin']:>7.3f}" if "twin" in r else f"{'':>7}"
        diff = f"{r['diff']:>7.2f}{r['diff_p90']:>8.2f}" if "diff" in r else f"{'':>15}"
        lines.append(
            f"{r['condition']:<12}{r['n']:>5}{r['refused']:>8}{r['acc']:>7.3f}{twin}"
            f"{r['scan']:>7.3f}{r['nn']:>7.3f}{diff}{r['shipped']:>8.3f}{r['ms']:>7.1f}"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="digits per condition")
    parser.add_argument("--n-large", type=int, default=60, help="digits as 12 MP photos")
    parser.add_argument("--only", default="", help="comma-separated conditions or styles")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    from sklearn.neighbors import KNeighborsClassifier

    prep_hash = source_hash("preprocessing.py", "decoding.py")
    synth_hash = source_hash("synth.py", "augment.py")
    started = time.perf_counter()
    X, y = reference_features(prep_hash)
    ref = reference_classifier(X, y)
    nn = KNeighborsClassifier(n_neighbors=1).fit(X, y)
    manifest = json.loads(MODEL.with_suffix(".manifest.json").read_text())
    shipped = load_classifier(MODEL.read_bytes(), sha256=manifest["sha256"])
    print(f"reference ready in {time.perf_counter() - started:.0f} s", file=sys.stderr)

    names = [*CONDITIONS, *STYLES]
    if args.only:
        names = [name for name in names if name in args.only.split(",")]
    n_max = max(args.n, args.n_large)
    labels = load_mnist()[1][validation_index()[:n_max]]
    scan_rows = [read(data)[0] for data, _ in uploads("scan", 0, n_max, synth_hash)]
    scan_X = np.array([r if r is not None else np.zeros(64) for r in scan_rows], np.float64)
    scan_ok = np.array([r is not None for r in scan_rows])
    scan_hits = (ref.predict(scan_X) == labels) & scan_ok
    results = []
    for name in names:
        k = (CONDITIONS.index(name) + 1) * 10 if name in CONDITIONS else STYLES.index(name)
        n = args.n_large if name == "large_photo" else args.n
        results.append(score(name, k, n, synth_hash, ref, nn, shipped, scan_hits))
        print(f"{name}: done at {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if args.json:
        print(json.dumps({"prep_hash": prep_hash, "results": results}, indent=1))
    else:
        print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
