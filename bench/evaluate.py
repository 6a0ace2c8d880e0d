"""`make eval`: accuracy of the shipped model on handwriting it never saw, through real HTTP.

Starts a real gunicorn server (free port, temporary DIGITS_VAR_DIR and SECRET_KEY), renders
every semeion digit (validation only: other writers) as an upload in each synthetic style,
posts them to POST /predict/ as multipart forms, and scores the answers. Also scores the
``test/`` images the same way and reports the scikit-learn example split recorded in the
model's manifest (computed through the same normalisation as uploads). Prints one table and
writes it to var/eval.txt.

Usage: python bench/evaluate.py [--semeion PATH] [--sample N] [--workers N] [--out var/eval.txt]
(``make eval SEMEION=PATH`` passes --semeion.) semeion is not in the repo: by default it is read
from ``../shared/data/semeion/`` beside the clone.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "digits_model"))

from predicciones.ml.datasets import DEFAULT_SEMEION_DIR, load_semeion  # noqa: E402
from predicciones.ml.synth import STYLES, render  # noqa: E402

MODEL_DIR = REPO / "digits_model" / "model"
BINS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0001)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A gunicorn process serving the project on a free loopback port."""

    def __init__(self, workers: int):
        self.tmp = tempfile.TemporaryDirectory(prefix="digits-eval-")
        self.port = free_port()
        self.env = {
            **os.environ,
            "SECRET_KEY": "eval-only-" + os.urandom(8).hex(),
            "DIGITS_VAR_DIR": self.tmp.name,
            "PORT": str(self.port),
            "DIGITS_WORKERS": str(workers),
            "DIGITS_LOG_LEVEL": "WARNING",
        }
        self.env.pop("DATABASE_URL", None)
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def __enter__(self):
        cwd = REPO / "digits_model"
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=cwd,
            env=self.env,
            check=True,
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "digits_model.wsgi", "-c", "gunicorn.conf.py"],
            cwd=cwd,
            env=self.env,
        )
        try:
            self._wait_ready(deadline=time.monotonic() + 90)
        except BaseException:
            self.__exit__(None, None, None)  # never leave a server behind
            raise
        return self

    def _wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("gunicorn exited during start-up")
            try:
                # The first request of a worker loads Django and the model: give it time.
                requests.get(self.url + "/predict/", timeout=10)
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer within 90 s")

    def __exit__(self, *exc):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.tmp.cleanup()


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--semeion",
        default=str(DEFAULT_SEMEION_DIR),
        metavar="PATH",
        help="semeion.csv or its folder (default: ../shared/data/semeion beside the clone)",
    )
    parser.add_argument("--sample", type=int, default=0, help="semeion digits to use (0: all)")
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
    manifest = json.loads((MODEL_DIR / "clf.manifest.json").read_text())

    rows = []
    all_correct, all_conf = [], []
    started = time.monotonic()
    with Server(args.workers) as server:
        for k, style in enumerate(STYLES):
            rng = np.random.default_rng([args.seed, k])
            uploads = [(f"s{i}.img", render(img, style, rng)) for i, img in enumerate(images)]
            result = score(post_all(server.url, uploads, threads=args.workers * 2), labels)
            rows.append((f"semeion / {style}", result))
            all_correct.append(result["correct"])
            all_conf.append(result["confidence"])
        test_dir = REPO / "test"
        with open(test_dir / "labels.csv", newline="") as fh:
            table = list(csv.DictReader(fh))
        uploads = [(t["file"], (test_dir / t["file"]).read_bytes()) for t in table]
        test_labels = np.array([int(t["label"]) for t in table])
        test_result = score(post_all(server.url, uploads, threads=2), test_labels)
    correct = np.concatenate(all_correct)
    conf = np.concatenate(all_conf)
    overall = {
        "n": len(correct),
        "accuracy": float(correct.mean()),
        "refused": sum(r["refused"] for _, r in rows),
        "mean_confidence": float(conf.mean()),
        "latency_ms": float("nan"),
    }
    split = manifest["metrics"]["sklearn_example_split"]

    lines = [
        f"Model: {manifest['artifact']} sha256 {manifest['sha256'][:12]}... "
        f"(scikit-learn {manifest['sklearn_version']})",
        f"Semeion: {len(labels)} digits x {len(STYLES)} styles, posted over HTTP to gunicorn "
        f"({args.workers} workers); latency = server-side decode+preprocess+predict, median,",
        "measured while this client renders the uploads on the same cores (bench/latency.py "
        "measures it alone).",
        "",
        f"{'set':<24}{'n':>6}{'accuracy':>10}{'refused':>9}{'mean conf':>11}{'latency ms':>12}",
    ]

    def line(name, r):
        lat = "" if np.isnan(r["latency_ms"]) else f"{r['latency_ms']:.2f}"
        return (
            f"{name:<24}{r['n']:>6}{r['accuracy']:>10.4f}{r['refused']:>9}"
            f"{r['mean_confidence']:>11.3f}{lat:>12}"
        )

    lines += [line(name, r) for name, r in rows]
    lines.append(line("semeion / overall", overall))
    lines.append(line("test/ images", test_result))
    lines.append(
        f"{'sklearn example split':<24}{split['n']:>6}{split['accuracy']:>10.4f}"
        f"{'':>9}{'':>11}{'':>12}  (from the manifest; same normalisation as uploads)"
    )
    lines += ["", "Confidence reliability (semeion, all styles):"]
    lines += reliability(conf, correct)
    gap = abs(conf.mean() - correct.mean())
    lines.append(
        f"mean confidence - accuracy: {conf.mean() - correct.mean():+.4f} (|gap| {gap:.4f})"
    )
    lines.append(f"eval took {time.monotonic() - started:.0f} s")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
