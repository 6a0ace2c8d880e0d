"""Write the semeion regression baseline the ML tests compare against.

Scores the shipped model on a fixed sample of semeion digits (validation only) rendered in
every upload style, through the real preprocessing, and writes the result beside the model
(``digits_model/model/clf.semeion.json``). Run it after retraining the shipped model.

Usage: python -m experiments.semeion_baseline
"""

from __future__ import annotations

import json
import sys

from harness.paths import REPO_DIR as REPO
from predicciones.ml.classifier import load_classifier
from predicciones.ml.datasets import load_semeion
from predicciones.ml.validation import upload_accuracy

MODEL = REPO / "digits_model" / "model" / "clf.pickle"
OUT = MODEL.with_suffix(".semeion.json")
#: Every SAMPLE_STEP-th semeion digit, and the renderings' seed: the test uses the same.
SAMPLE_STEP, SEED = 8, 31


def main() -> int:
    manifest = json.loads(MODEL.with_suffix(".manifest.json").read_text())
    clf = load_classifier(MODEL.read_bytes(), sha256=manifest["sha256"])
    images, labels = load_semeion()
    result = upload_accuracy(clf, images[::SAMPLE_STEP], labels[::SAMPLE_STEP], seed=SEED)
    record = {"sha256": manifest["sha256"], "sample_step": SAMPLE_STEP, "seed": SEED, **result}
    OUT.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
