"""Features of a large, varied set of uploads, by a git revision and by this tree: any difference.

A faster preprocessing must read every upload exactly as before. This script builds the set
(generated, deterministic but for the hostile corpus's random bytes), computes what the
revision's ``preprocess`` and this tree's make of each item in one process (the revision
exported with ``git archive`` and imported beside this tree's, as ``compare_latency.py``
does), and compares:

- the outcome: the 64 features and the ``inverted`` flag, or the class of the ``ImageError``;
- the 32x32 bitmap the features are counted from (reported, bit for bit);
- the shipped model's probabilities for each row that was read, one row at a time, through
  each side's ``predict`` (reported, bit for bit);
- training's renderings (``augment.training_features``: arrays, distortions and
  ``redraw_strokes``) and validation's (``validation.styled_features``), each side running
  its own code on the same digits.

The set: the seed's ``test/`` images; the bench's images; every condition of
``synth.CONDITIONS`` and every style of ``synth.STYLES`` drawn from MNIST validation
digits, optdigits and ``load_digits`` (and the conditions' clean twins, as arrays); the
test renderers' scans, marker digits, small digits on a large page, seven-segment displays
and X shapes; the ML tests' photos (colour paper, gradients, rotations, thin strokes in 12 MP,
RGBA, palette, 16-bit, CMYK, EXIF rotation, BMP/TIFF/WebP); the hostile corpus; the upload
fuzz test's seed files and a few hundred of their mutations; MNIST digits as arrays.

The revision's answers are cached under ``var/features_unchanged/`` by the sha256 of each
item, so only the first run against a revision pays for both sides.

Usage: python -m bench.features_unchanged [--before e5e5d3f] [--n 300] [--quick]
Exit status 0 when every outcome is identical, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import io
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench.compare_latency import export_revision, load_package
from harness.paths import PROJECT_DIR, REPO_DIR, TEST_IMAGES_DIR, VAR_DIR

CACHE = VAR_DIR / "features_unchanged"
#: Seed of every generated item.
SEED = 23


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="e5e5d3f", help="git revision to compare against")
    parser.add_argument(
        "--refusals-as",
        default=None,
        help="revision whose refusals are expected (default: the merge base with main)",
    )
    parser.add_argument("--n", type=int, default=300, help="digits per style (conditions: n/4)")
    parser.add_argument("--quick", action="store_true", help="a tenth of the digits")
    args = parser.parse_args(argv)
    n = max(10, args.n // 10) if args.quick else args.n
    sha = git("rev-parse", args.before)
    later = git("rev-parse", args.refusals_as or git("merge-base", "HEAD", "main"))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = export_revision(sha, Path(tmp))
        before = Side(root)
        refusals = Side(export_revision(later, Path(tmp) / "later")) if later != sha else None
        after = Side(PROJECT_DIR)  # imported last: the test helpers use this tree
        items = cached_corpus(n)
        print(
            f"{len(items)} items generated in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
        cache_path = CACHE / f"{sha}.pkl"
        cache = pickle.loads(cache_path.read_bytes()) if cache_path.exists() else {}
        with c_stderr_silenced():  # libjpeg and libtiff print a line for each corrupt file
            differences = compare_items(items, before, after, cache, refusals)
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache_path.write_bytes(pickle.dumps(cache, protocol=pickle.HIGHEST_PROTOCOL))
        differences += compare_renderings(n, before, after)
    print(f"load average at end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{time.perf_counter() - started:.0f} s in all")
    if differences:
        print(f"DIFFERENT: {differences} outcomes differ from {args.before} ({sha[:10]})")
        return 1
    print(f"IDENTICAL: every outcome is the same as {args.before}'s ({sha[:10]})")
    return 0


@contextlib.contextmanager
def c_stderr_silenced():
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "wb") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def git(*args: str) -> str:
    command = ["git", "-C", str(REPO_DIR), *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


class Side:
    """One revision's ``preprocess``, ``predict``, shipped model and renderers' entry points."""

    def __init__(self, root: Path):
        self.preprocess, classifier = load_package(root)
        self.predict = classifier.predict
        model = root / "model" / "clf.pickle"
        manifest = json.loads(model.with_suffix(".manifest.json").read_text())
        self.clf = classifier.load_classifier(model.read_bytes(), sha256=manifest["sha256"])
        # Imported from the package load_package has just imported from ``root``.
        self.errors = importlib.import_module("predicciones.ml.exceptions").ImageError
        augment = importlib.import_module("predicciones.ml.augment")
        self.training_features = augment.training_features
        self.styled_features = importlib.import_module("predicciones.ml.validation").styled_features

    def outcome(self, data) -> tuple:
        """('ok', features, inverted, bitmap) or ('error', class name)."""
        try:
            done = self.preprocess(data)
        except self.errors as exc:
            return ("error", type(exc).__name__)
        return ("ok", done.features.tobytes(), bool(done.inverted), done.bitmap.tobytes())


def item_key(data) -> str:
    digest = hashlib.sha256()
    if isinstance(data, np.ndarray):
        digest.update(f"{data.dtype.str}{data.shape}".encode())
        digest.update(np.ascontiguousarray(data).tobytes())
    else:
        digest.update(data)
    return digest.hexdigest()


def compare_items(items, before: Side, after: Side, cache, refusals: Side | None) -> int:
    """Outcomes, bitmaps and probabilities of every item by both sides; the table per group.

    An item one side reads and the other refuses (or refuses for another reason) is a
    difference unless ``refusals`` (a later revision whose decoding limits are wanted) gives
    the same answer as this tree, or this tree refuses it as too large (the pixel caps are
    the limits this tree sets, not features: counted under "caps").
    """
    columns = ("n", "read", "features", "refusal", "as later", "caps", "bitmap", "predict")
    rows = defaultdict(lambda: dict.fromkeys(columns, 0))
    examples = []
    for group, name, data in items:
        key = item_key(data)
        if key not in cache:
            cache[key] = before.outcome(data)
        old, new = cache[key], after.outcome(data)
        row = rows[group]
        row["n"] += 1
        row["read"] += old[0] == "ok"
        if old[0] == new[0] == "ok" and old[1:3] != new[1:3]:
            row["features"] += 1
            examples.append(f"{group}/{name}: {describe(old)} -> {describe(new)}")
            continue
        if old[:2] != new[:2]:
            if new[:2] == ("error", "ImageTooLargeError"):
                row["caps"] += 1
                examples.append(f"{group}/{name}: {describe(old)} -> {describe(new)} (caps)")
            elif refusals is not None and refusals.outcome(data)[:3] == new[:3]:
                row["as later"] += 1
            else:
                row["refusal"] += 1
                examples.append(f"{group}/{name}: {describe(old)} -> {describe(new)}")
            continue
        if old[0] != "ok":
            continue
        if old[3] != new[3]:
            row["bitmap"] += 1
            examples.append(f"{group}/{name}: same features, bitmap differs")
        features = np.frombuffer(old[1], np.uint8)
        p_old = before.predict(before.clf, features)
        p_new = after.predict(after.clf, features)
        if p_old[0][0] != p_new[0][0] or p_old[1][0] != p_new[1][0]:
            row["predict"] += 1
            examples.append(f"{group}/{name}: prediction {p_old} -> {p_new}")
    print(f"{'group':<14}" + "".join(f"{c:>9}" for c in columns))
    for group, row in rows.items():
        print(f"{group:<14}" + "".join(f"{row[c]:>9}" for c in columns))
    for line in examples[:40]:
        print("  " + line)
    failing = ("features", "refusal", "bitmap", "predict")
    return sum(row[c] for row in rows.values() for c in failing)


def describe(outcome: tuple) -> str:
    if outcome[0] != "ok":
        return outcome[1]
    grid = np.frombuffer(outcome[1], np.uint8)
    return f"features {grid[:8].tolist()}... inverted={outcome[2]}"


def compare_renderings(n: int, before: Side, after: Side) -> int:
    """Training's and validation's own renderings of the same digits, by each side's code."""
    from predicciones.ml.sources import load_mnist, load_optdigits, load_sklearn_digits

    mnist, _ = load_mnist()
    optdigits, _ = load_optdigits()
    sklearn_digits, _ = load_sklearn_digits()
    differences = 0
    for name, X in (
        ("mnist", mnist[9 : 9 + 10 * n : 10]),
        ("optdigits", optdigits[:n]),
        ("load_digits", sklearn_digits[: n // 3]),
    ):
        old = before.training_features(X, n_augment=2, seed=SEED)
        new = after.training_features(X, n_augment=2, seed=SEED)
        same = all(np.array_equal(a, b) for a, b in zip(old, new, strict=True))
        differences += not same
        print(
            f"training_features({name}, {len(X)} digits, 2 distortions): {len(old[0])} rows,",
            "identical" if same else "DIFFERENT",
        )
        if name == "mnist":
            continue
        ids = np.arange(len(X))
        old = before.styled_features(X[: n // 3], ids[: n // 3], seed=SEED)
        new = after.styled_features(X[: n // 3], ids[: n // 3], seed=SEED)
        same = all(np.array_equal(a, b) for a, b in zip(old, new, strict=True))
        differences += not same
        print(
            f"styled_features({name}, {n // 3} digits, 5 styles):",
            "identical" if same else "DIFFERENT",
        )
    return differences


# --- The set -----------------------------------------------------------------------------------


#: What the set is made by: a change to any of these makes it again.
GENERATORS = (
    "bench/features_unchanged.py",
    "bench/images.py",
    "digits_model/predicciones/ml/synth.py",
    "digits_model/predicciones/ml/augment.py",
    "harness/rendering.py",
    "harness/hostile.py",
    "digits_model/predicciones/tests/conftest.py",
    "digits_model/predicciones/tests/ml/conftest.py",
    "digits_model/predicciones/tests/apis/test_upload_fuzz.py",
)


def cached_corpus(n: int) -> list[tuple[str, str, object]]:
    """:func:`corpus`, kept under ``var/`` until one of :data:`GENERATORS` changes."""
    digest = hashlib.sha256(str(n).encode())
    for name in GENERATORS:
        digest.update((REPO_DIR / name).read_bytes())
    path = CACHE / f"corpus-{digest.hexdigest()[:16]}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    items = corpus(n)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL))
    return items


def corpus(n: int) -> list[tuple[str, str, object]]:
    """(group, name, bytes or greyscale array) of every item."""
    items = []
    for make in (
        seed_images,
        bench_images,
        conditions,
        styles,
        test_renderings,
        test_photos,
        hostile,
        fuzz,
        arrays,
    ):
        items += make(n)
    return items


def seed_images(n):
    return [("test/", p.name, p.read_bytes()) for p in sorted((TEST_IMAGES_DIR).glob("*.jpg"))]


def bench_images(n):
    from bench.images import digit_image, http_image, model_side_images

    out = [("bench", name, data) for name, data in model_side_images().items()]
    out.append(("bench", "http", http_image()))
    for seed, (w, h, fmt) in enumerate(
        [
            (64, 64, "PNG"),
            (120, 90, "JPEG"),
            (1024, 768, "JPEG"),
            (2000, 1500, "JPEG"),
            (3000, 4000, "JPEG"),
            (500, 500, "WEBP"),
            (300, 200, "BMP"),
        ]
    ):
        out.append(("bench", f"{w}x{h} {fmt}", digit_image(w, h, fmt, seed=seed + 1)))
    return out


def conditions(n):
    from predicciones.ml.sources import load_mnist
    from predicciones.ml.synth import CONDITIONS, render_condition

    images, _ = load_mnist()
    out = []
    for k, condition in enumerate(CONDITIONS):
        rng = np.random.default_rng([SEED, k])
        count = max(4, n // 20) if condition == "large_photo" else max(10, n // 4)
        for i in range(count):
            data, twin = render_condition(images[9 + 10 * i], condition, rng)
            out.append(("conditions", f"{condition} {i}", data))
            out.append(("twins", f"{condition} {i}", twin))
    return out


def styles(n):
    from predicciones.ml.sources import load_mnist, load_optdigits, load_sklearn_digits
    from predicciones.ml.synth import STYLES, render

    sources = {
        "mnist": load_mnist()[0][19 : 19 + 10 * n : 10],
        "optdigits": load_optdigits()[0][n : 2 * n],
        "load_digits": load_sklearn_digits()[0][: n // 3],
    }
    out = []
    for source, digits in sources.items():
        for k, style in enumerate(STYLES):
            rng = np.random.default_rng([SEED, 100 + k])
            out += [
                ("styles", f"{source} {style} {i}", render(d, style, rng))
                for i, d in enumerate(digits)
            ]
    return out


def test_renderings(n):
    from harness.rendering import digits_data, render_upload, segment_digit, x_shape

    X, _ = digits_data()
    rng = np.random.default_rng(SEED)
    out = []
    for i in range(n):
        style = ("scan", "marker", "small_offset")[i % 3]
        fmt = "PNG" if i % 4 == 0 else "JPEG"
        data = render_upload(X[i], rng=rng, style=style, fmt=fmt)
        out.append(("test renders", f"{style} {fmt} {i}", data))
    for i in range(n // 5):
        out.append(("test renders", f"segments {i}", segment_digit(i % 10, rng=rng)))
        out.append(("test renders", f"x {i}", x_shape(rng=rng, fmt="PNG" if i % 2 else "JPEG")))
    return out


def test_photos(n):
    """The kinds of picture the ML tests draw (their helpers, other parameters too)."""
    from PIL import Image

    from predicciones.tests.ml.conftest import digit_coverage, encode, paint

    rng = np.random.default_rng(SEED)
    out = []

    def add(name, data):
        out.append(("test photos", name, data))

    for label in (2, 3, 4, 7):
        for canvas, height in (
            ((28, 28), 20),
            ((240, 220), 150),
            ((480, 640), 60),
            ((480, 640), 180),
            ((900, 1200), 300),
        ):
            for width in (2.0, 10.0, 30.0):
                cov = digit_coverage(
                    label, canvas=canvas, height=height, width=width, blur=max(0.5, height / 200)
                )
                add(f"{label} {canvas} {height} {width} png", encode(paint(cov)))
                add(
                    f"{label} {canvas} {height} {width} jpeg",
                    encode(paint(cov, ink=0.2, paper=0.9), "JPEG", quality=80),
                )
                add(f"{label} {canvas} {height} {width} inverted", encode(cov))
        for angle in (-15, 8):
            add(f"{label} angle {angle}", encode(paint(digit_coverage(label, angle=angle))))
        for ink, paper in (
            ((0.75, 0.1, 0.1), (1.0, 0.75, 0.8)),
            ((0.1, 0.2, 0.7), (0.6, 0.75, 1.0)),
            ((0.1, 0.45, 0.1), (1.0, 1.0, 0.6)),
        ):
            cov = digit_coverage(label)
            add(f"{label} colour {ink}", encode(paint(cov, ink=ink, paper=paper)))
            add(
                f"{label} colour {ink} jpeg",
                encode(paint(cov, ink=ink, paper=paper), "JPEG", quality=90),
            )
        cov = digit_coverage(label, canvas=(480, 640), height=140, centre=(300, 200))
        yy, xx = np.mgrid[0:480, 0:640]
        light = (1.0 - 0.35 * (xx + yy) / 1120)[..., None]
        rgb = paint(cov, ink=(0.1, 0.1, 0.3), paper=(0.9, 0.85, 0.7)) * light
        rgb += rng.normal(0, 0.02, rgb.shape)
        add(f"{label} tinted shadow", encode(rgb, "JPEG", quality=65))
        for centre in ((40, 40), (440, 560), (240, 320)):
            cov = digit_coverage(label, canvas=(480, 640), height=70, centre=centre)
            add(f"{label} at {centre}", encode(paint(cov)))
        cov = digit_coverage(label)
        add(f"{label} rgba", encode(np.dstack([np.zeros_like(cov)] * 3 + [cov]), mode="RGBA"))
        add(f"{label} palette", encode(paint(cov), mode="P"))
        add(f"{label} cmyk", encode(paint(cov), "JPEG", mode="CMYK"))
        img16 = Image.fromarray((paint(cov) * 65535).astype(np.uint16))
        buffer = io.BytesIO()
        img16.save(buffer, format="PNG")
        add(f"{label} 16-bit", buffer.getvalue())
        for fmt in ("BMP", "TIFF", "WEBP", "GIF"):
            add(f"{label} {fmt}", encode(paint(cov), fmt))
        exif = Image.Exif()
        exif[0x0112] = 6
        add(f"{label} exif", encode(paint(cov), "JPEG", exif=exif.tobytes()))
    for label, (height, pen) in zip((3, 2), ((900, 1.5), (300, 2.0)), strict=True):
        cov = digit_coverage(
            label, canvas=(3000, 4000), height=height, centre=(1200, 2600), width=pen
        )
        add(f"{label} 12 MP pen {pen}", encode(paint(cov), "JPEG", quality=85))
    return out


def hostile(n):
    from harness.hostile import hostile_uploads

    return [("hostile", upload.name, upload.data) for upload in hostile_uploads()]


def fuzz(n):
    """The fuzz test's seed files and mutations of them drawn like its strategy draws them."""
    from predicciones.tests.apis.test_upload_fuzz import EXTREMES, SEEDS, mutate

    rng = np.random.default_rng(SEED)
    out = [("fuzz", name, data) for name, data in SEEDS.items()]
    names = sorted(SEEDS)
    for i in range(2 * n):
        mutations = []
        for _ in range(int(rng.integers(1, 9))):
            op = ("flip", "set", "header", "extreme", "insert", "delete", "truncate")[
                int(rng.integers(7))
            ]
            position = int(rng.integers(0, 2**20))
            if op == "flip":
                mutations.append((op, position, int(rng.integers(8))))
            elif op == "set":
                mutations.append((op, position, int(rng.integers(256))))
            elif op == "header":
                mutations.append((op, int(rng.integers(96)), int(rng.integers(256))))
            elif op == "extreme":
                fmt = (">H", "<H", ">I", "<I")[int(rng.integers(4))]
                value = EXTREMES[int(rng.integers(len(EXTREMES)))]
                mutations.append((op, int(rng.integers(96)), value, fmt))
            elif op == "insert":
                mutations.append((op, position, rng.bytes(int(rng.integers(1, 33)))))
            elif op == "delete":
                mutations.append((op, position, int(rng.integers(1, 65))))
            else:
                mutations.append((op, position))
        name = names[i % len(names)]
        out.append(("fuzz", f"{name} mutated {i}", mutate(SEEDS[name], mutations)))
    return out


def arrays(n):
    """MNIST crops as arrays, either polarity, as training and the notebook pass them."""
    from predicciones.ml.sources import load_mnist

    images = load_mnist()[0][29 : 29 + 10 * n : 10]
    out = []
    for i, image in enumerate(images):
        gray = image / np.float32(255)
        out.append(("arrays", f"mnist {i}", gray if i % 2 else 1.0 - gray))
    return out


if __name__ == "__main__":
    sys.exit(main())
