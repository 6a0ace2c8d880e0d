"""`make eval`: accuracy of the shipped model on handwriting it never trained on, over HTTP.

Starts a real gunicorn server (free port, temporary DIGITS_VAR_DIR and SECRET_KEY), draws
each validation digit as an upload, posts it to POST /predict/ as a multipart form, and
scores the answers:

- semeion (about 80 writers nobody here knows; validation only, never trained or tuned
  on), every digit in each of the five styles of ``predicciones.ml.synth``;
- MNIST's validation slice (``index % 10 == 9``: 6,000 digits no model trains on) in the
  same five styles, and a part of it in each real-upload condition (tight crop, ruled and
  squared paper, pencil, 12 MP photo, JPEG quality 10, tilted, blurred);
- UNIPEN's validation writers (13 writers of 7 groups no model trains on) and pendigits'
  fixed tenth (``index % 10 == 9``), pen strokes drawn in the five styles and on the page's
  canvas;
- the letterforms of ``predicciones.ml.letterforms`` (a 1 with a long flag, a crossed 7,
  an open 4, ...), each drawn 20 times in the five styles and on the canvas;
- the ``test/`` images.

It also reports the validation and scikit-learn example-split scores recorded in the
model's manifest, and, per set, the mean confidence beside the accuracy with a
reliability table. Prints one table and writes it to var/eval.txt.

Usage: python -m bench.evaluate [--semeion PATH] [--sample N] [--mnist N] [--conditions N]
                                [--pen N] [--workers N] [--out var/eval.txt]
(``make eval SEMEION=PATH`` passes --semeion.) semeion is not in the repo: by default it is read
from ``../shared/data/semeion/`` beside the clone.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests

from harness.paths import MODEL_DIR
from harness.paths import REPO_DIR as REPO
from harness.servers import ServerProcess
from predicciones.ml.datasets import DEFAULT_SEMEION_DIR, load_semeion
from predicciones.ml.letterforms import LETTERFORMS, letterform
from predicciones.ml.sources import load_mnist, load_pendigits, load_unipen
from predicciones.ml.splits import digit_part
from predicciones.ml.synth import CONDITIONS, PEN_STYLES, STYLES, render

BINS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0001)
#: Drawings of each letterform in each style.
LETTERFORM_DRAWINGS = 20


def post_all(url: str, uploads: list[tuple[str, bytes]], threads: int) -> list[dict]:
    """POST each (filename, bytes) to /predict/; return the JSON answers in order."""
    session = requests.Session()

    def one(item):
        name, data = item
        for attempt in range(3):
            try:
                r = session.post(
                    url + "/predict/",
                    files={"image": (name, data)},
                    data={"model": "clf.pickle"},
                    timeout=30,
                )
                return {"http": r.status_code, **r.json()}
            except requests.ConnectionError:
                if attempt == 2:
                    raise
                time.sleep(0.5)
        raise AssertionError("unreachable")

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(one, uploads))


def seconds(answer: dict) -> float:
    return float(str(answer.get("execution_time", "nan")).split()[0])


def score(answers: list[dict], labels: np.ndarray) -> dict:
    pred = np.array([a.get("prediction", -1) if a["http"] == 200 else -1 for a in answers])
    conf = np.array([a.get("confidence", 0.0) if a["http"] == 200 else 0.0 for a in answers])
    latency = np.array([seconds(a) for a in answers if a["http"] == 200])
    return {
        "n": len(labels),
        "accuracy": float((pred == labels).mean()),
        "refused": int((pred == -1).sum()),
        "mean_confidence": float(conf.mean()),
        "latency_ms": float(np.median(latency) * 1000) if latency.size else float("nan"),
        "correct": pred == labels,
        "confidence": conf,
    }


def reliability(conf: np.ndarray, correct: np.ndarray) -> list[str]:
    """The reliability table's lines: per confidence bin, count, mean confidence, accuracy."""
    lines = [f"{'confidence':<16}{'count':>8}{'mean conf':>11}{'accuracy':>10}"]
    for lo, hi in itertools.pairwise(BINS):
        inside = (conf >= lo) & (conf < hi)
        if inside.any():
            lines.append(
                f"[{lo:.2f}, {min(hi, 1.0):.2f}{')' if hi < 1 else ']'}  "
                f"{int(inside.sum()):>8}{conf[inside].mean():>11.3f}{correct[inside].mean():>10.3f}"
            )
    return lines


def _render_chunk(digits, style, seed, ids):
    pairs = zip(digits, ids, strict=True)
    return [render(d, style, np.random.default_rng([seed, int(i)])) for d, i in pairs]


def render_all(digits, style: str, seed: int, jobs: int) -> list[bytes]:
    """Each digit drawn in ``style`` (digit i from default_rng([seed, i])), by ``jobs``."""
    from joblib import Parallel, delayed

    ids = np.arange(len(digits))
    chunks = [c for c in np.array_split(ids, 4 * jobs) if len(c)]
    parts = Parallel(n_jobs=jobs)(delayed(_render_chunk)(digits[c], style, seed, c) for c in chunks)
    return [blob for part in parts for blob in part]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--semeion",
        default=str(DEFAULT_SEMEION_DIR),
        metavar="PATH",
        help="semeion.csv or its folder (default: ../shared/data/semeion beside the clone)",
    )
    parser.add_argument("--sample", type=int, default=0, help="semeion digits to use (0: all)")
    parser.add_argument(
        "--mnist", type=int, default=6000, help="MNIST slice digits per style (all: 6000)"
    )
    parser.add_argument(
        "--conditions", type=int, default=1000, help="MNIST slice digits per condition"
    )
    parser.add_argument(
        "--pen", type=int, default=0, help="UNIPEN and pendigits digits per style (0: all)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--out", default=str(REPO / "var" / "eval.txt"))
    args = parser.parse_args(argv)

    try:
        images, labels = load_semeion(args.semeion)
    except FileNotFoundError as exc:
        print(
            f"evaluate: {exc} (the semeion digits are not in the repo): pass --semeion PATH "
            "(make eval SEMEION=PATH) with semeion.csv or its folder",
            file=sys.stderr,
        )
        return 2
    if args.sample:
        pick = np.random.default_rng(args.seed).choice(len(labels), args.sample, replace=False)
        images, labels = images[np.sort(pick)], labels[np.sort(pick)]
    mnist_images, mnist_labels = load_mnist()
    # MNIST's validation slice: the digits no model trains on.
    mnist_slice = np.flatnonzero(digit_part("mnist", np.arange(len(mnist_labels))) == "validation")
    manifest = json.loads((MODEL_DIR / "clf.manifest.json").read_text())

    # (family, set name, digits, labels, style): every set is drawn, posted and scored alike.
    plan = [("semeion", f"semeion / {st}", images, labels, st) for st in STYLES]
    slice_ = mnist_slice[: args.mnist]
    plan += [
        ("mnist", f"MNIST slice / {st}", mnist_images[slice_], mnist_labels[slice_], st)
        for st in STYLES
    ]
    part = mnist_slice[: args.conditions]
    plan += [
        ("conditions", f"condition / {c}", mnist_images[part], mnist_labels[part], c)
        for c in CONDITIONS
    ]
    for family, name, pen in (
        ("unipen", "UNIPEN validation", load_unipen()),
        ("pendigits", "pendigits tenth", load_pendigits()),
    ):
        index = np.flatnonzero(digit_part(family, np.arange(len(pen.labels))) == "validation")
        index = index[:: max(1, len(index) // args.pen)] if args.pen else index
        plan += [
            (family, f"{name} / {st}", pen.traces[index], pen.labels[index], st)
            for st in PEN_STYLES
        ]
    for name in LETTERFORMS:
        digit, trace = letterform(name)
        drawings = np.empty(LETTERFORM_DRAWINGS, dtype=object)
        drawings[:] = [trace] * LETTERFORM_DRAWINGS
        truth = np.full(LETTERFORM_DRAWINGS, digit)
        plan += [("letterforms", f"{name} / {st}", drawings, truth, st) for st in PEN_STYLES]
    results = []  # (family, set name, result)
    started = time.monotonic()
    with ServerProcess(workers=args.workers) as server:
        for k, (fam, name, digits, truth, style) in enumerate(plan):
            blobs = render_all(digits, style, args.seed + k, args.workers)
            uploads = [(f"u{i}.img", b) for i, b in enumerate(blobs)]
            result = score(post_all(server.base_url, uploads, threads=args.workers * 2), truth)
            results.append((fam, name, result))
            print(line(name, result), flush=True)
        test_dir = REPO / "test"
        with open(test_dir / "labels.csv", newline="") as fh:
            table = list(csv.DictReader(fh))
        uploads = [(t["file"], (test_dir / t["file"]).read_bytes()) for t in table]
        test_labels = np.array([int(t["label"]) for t in table])
        test_result = score(post_all(server.base_url, uploads, threads=2), test_labels)

    def overall(parts: list[dict]) -> dict:
        correct = np.concatenate([r["correct"] for r in parts])
        conf = np.concatenate([r["confidence"] for r in parts])
        return {
            "n": len(correct),
            "accuracy": float(correct.mean()),
            "refused": sum(r["refused"] for r in parts),
            "mean_confidence": float(conf.mean()),
            "latency_ms": float("nan"),
            "correct": correct,
            "confidence": conf,
        }

    validation = manifest["metrics"].get("validation", {})
    split = manifest["metrics"].get("sklearn_example_split", {})
    lines = [
        f"Model: {manifest['artifact']} sha256 {manifest['sha256'][:12]}... "
        f"(scikit-learn {manifest['sklearn_version']})",
        f"Posted over HTTP to gunicorn ({args.workers} workers); latency = server-side "
        "decode+preprocess+predict, median,",
        "measured while this client renders the uploads on the same cores (bench/latency.py "
        "measures it alone). gap = mean confidence - accuracy.",
        "",
        HEADER,
    ]
    for fam, label in (
        ("semeion", "semeion / overall"),
        ("mnist", "MNIST slice / overall"),
        ("conditions", "conditions / overall"),
        ("unipen", "UNIPEN validation / overall"),
        ("pendigits", "pendigits tenth / overall"),
        ("letterforms", "letterforms / overall"),
    ):
        parts = [(name, r) for f, name, r in results if f == fam]
        if fam == "letterforms":  # one line a letterform, its styles together
            for form in LETTERFORMS:
                mine = [r for name, r in parts if name.startswith(form + " /")]
                lines.append(line(form, overall(mine)))
        else:
            lines += [line(name, r) for name, r in parts]
        if parts:
            lines.append(line(label, overall([r for _, r in parts])))
    lines.append(line("test/ images", test_result))
    for name, metrics in (
        ("validation (manifest)", validation),
        ("  of it, MNIST slice", validation.get("mnist", {})),
        ("  of it, load_digits", validation.get("sklearn", {})),
        ("  of it, UNIPEN writers", validation.get("unipen", {})),
        ("  of it, pendigits", validation.get("pendigits", {})),
        ("sklearn example split", split),
        ("  the model, second half", split.get("base_model", {})),
    ):
        if metrics:
            lines.append(f"{name:<34}{metrics['n']:>6}{metrics['accuracy']:>10.4f}")
    everything = overall([r for _, _, r in results])
    lines += ["", "Confidence reliability (every upload above):"]
    lines += reliability(everything["confidence"], everything["correct"])
    lines.append(f"eval took {time.monotonic() - started:.0f} s")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return 0


HEADER = (
    f"{'set':<34}{'n':>6}{'accuracy':>10}{'refused':>9}{'mean conf':>11}{'gap':>8}"
    f"{'latency ms':>12}"
)


def line(name: str, r: dict) -> str:
    lat = "" if np.isnan(r["latency_ms"]) else f"{r['latency_ms']:.2f}"
    gap = r["mean_confidence"] - r["accuracy"]
    return (
        f"{name:<34}{r['n']:>6}{r['accuracy']:>10.4f}{r['refused']:>9}"
        f"{r['mean_confidence']:>11.3f}{gap:>+8.3f}{lat:>12}"
    )


if __name__ == "__main__":
    sys.exit(main())
