"""Data sets: the training data (scikit-learn's digits) and the external validation proxy.

``load_semeion`` is for VALIDATION ONLY: it is handwriting by other people, used to measure
how the model does on writers it never saw. Never train, tune or select a model on it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Where the semeion folder lives by default: ``../shared/data/semeion`` next to the repo.
DEFAULT_SEMEION_DIR = Path(__file__).resolve().parents[4] / "shared" / "data" / "semeion"


def load_base_data() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 digits.

    Returns
    -------
    X : ndarray of shape (1797, 64), float64, values 0..16
    y : ndarray of shape (1797,), int
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data.astype(np.float64), digits.target.astype(int)


def load_semeion(path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The semeion handwritten digits (validation only), as 16x16 binary bitmaps.

    Parameters
    ----------
    path : str or Path, optional
        ``semeion.csv`` or the folder holding it. Default: :data:`DEFAULT_SEMEION_DIR`.

    Returns
    -------
    images : ndarray of shape (1593, 16, 16), uint8, values 0 or 1
    labels : ndarray of shape (1593,), int

    Raises
    ------
    FileNotFoundError
        The file is not there (the message says where it was looked for).
    """
    path = Path(path) if path is not None else DEFAULT_SEMEION_DIR
    if path.is_dir():
        path = path / "semeion.csv"
    if not path.is_file():
        raise FileNotFoundError(f"semeion.csv not found at {path}")
    table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
    if table.ndim != 2 or table.shape[1] != 257:
        raise ValueError(f"{path}: expected 257 columns (label, p0..p255), got {table.shape}")
    labels = table[:, 0].astype(int)
    images = (table[:, 1:] > 0.5).astype(np.uint8).reshape(-1, 16, 16)
    return images, labels
