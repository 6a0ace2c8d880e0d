"""The seed's sample images (``test/``), their labels, and the three the model may misread."""

from __future__ import annotations

import csv
from pathlib import Path

from harness.paths import TEST_IMAGES_DIR

TEST_DIR = TEST_IMAGES_DIR

#: Reading all 60 is the aim. These three are load_digits digits drawn from their 8x8 counts
#: as blurred blobs, in forms MNIST's writers rarely use. digit_47 and digit_55 are misread
#: by every model trained here so far; digit_54 is a near tie (the shipped vote gives 0 0.53
#: and 6 0.42), which any retraining can tip either way. Any other image misread is a
#: regression.
HARD_IMAGES = {
    "digit_47.jpg": "a 9 whose loop is a blob, read as 3",
    "digit_54.jpg": "a 6 whose loop is filled, read as 0",
    "digit_55.jpg": "a 1 with a long flag, read as 7",
}


def labelled_images() -> list[tuple[Path, int]]:
    """Every image of ``test/`` with its label from ``labels.csv``."""
    with open(TEST_DIR / "labels.csv", newline="") as fh:
        return [(TEST_DIR / row["file"], int(row["label"])) for row in csv.DictReader(fh)]
