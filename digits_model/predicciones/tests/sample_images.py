"""The seed's sample images (``test/``), their labels, and the four the model may misread."""

from __future__ import annotations

import csv
from pathlib import Path

from harness.paths import TEST_IMAGES_DIR

TEST_DIR = TEST_IMAGES_DIR

#: Reading all 60 is the aim. These four are load_digits digits drawn from their 8x8 counts
#: as blurred blobs. The shipped model misreads digit_30 (a 4 whose arms close into a blob:
#: 0 at 0.63, 4 at 0.34, so the page offers the 4) and reads the other three right at near
#: ties (digit_47 9 at 0.65 against 3 at 0.28, digit_54 6 at 0.52 against 0 at 0.43,
#: digit_55 1 at 0.49 against 7 at 0.47), which any retraining can tip either way; the
#: models before it misread digit_47 and digit_55. Any other image misread is a regression.
HARD_IMAGES = {
    "digit_30.jpg": "a 4 whose arms close into a blob, read as 0",
    "digit_47.jpg": "a 9 whose loop is a blob, read as 3",
    "digit_54.jpg": "a 6 whose loop is filled, read as 0",
    "digit_55.jpg": "a 1 with a long flag, read as 7",
}


def labelled_images() -> list[tuple[Path, int]]:
    """Every image of ``test/`` with its label from ``labels.csv``."""
    with open(TEST_DIR / "labels.csv", newline="") as fh:
        return [(TEST_DIR / row["file"], int(row["label"])) for row in csv.DictReader(fh)]
