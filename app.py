"""Smallest possible use of the model: ``python app.py test/digit_42.jpg`` prints the digit.

Loads ``digits_model/model/clf.pickle`` only after checking its sha256 against the manifest
beside it, and reads the image through the same preprocessing as the web service (no Django).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from harness.paths import SHIPPED_MODEL as MODEL  # and digits_model/ on sys.path
from predicciones.ml.classifier import load_classifier, predict
from predicciones.ml.exceptions import ImageError
from predicciones.ml.preprocessing import preprocess


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python app.py IMAGE", file=sys.stderr)
        return 2
    manifest = json.loads(MODEL.with_suffix(".manifest.json").read_text())
    clf = load_classifier(MODEL.read_bytes(), sha256=manifest["sha256"])
    try:
        features = preprocess(Path(argv[1]).read_bytes()).features
    except (OSError, ImageError) as exc:
        print(f"{argv[1]}: {exc}", file=sys.stderr)
        return 2
    labels, _ = predict(clf, features)
    print(int(labels[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
