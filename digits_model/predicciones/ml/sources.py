"""The handwriting carried in ``digits_model/data/``, each source read in its own form.

Each loader checks the sha256 of the files it reads (a corrupted or substituted file stops
training with a clear error) and returns the digits in their own form, unrendered:
MNIST as 28x28 grey images, optdigits as 8x8 counts (plus the 32x32 bitmaps of the first
1,934), ``load_digits`` as 8x8 counts, UNIPEN and pendigits as pen strokes
(:class:`~predicciones.ml.strokes.Trace`). :mod:`~predicciones.ml.augment` renders them.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .strokes import Trace

#: The data folder in the repository (``digits_model/data``).
DATA_DIR = Path(__file__).resolve().parents[2] / "data"

#: sha256 of each file as committed (also listed in ``data/README.md``).
CHECKSUMS = {
    "mnist/train-images-idx3-ubyte.gz": (
        "db8f937d487057fb14a9f0fbe97f0bc8d311ab41b750d41e1ff37c43b9e55e19"
    ),
    "mnist/train-labels-idx1-ubyte.gz": (
        "51fc562b6747b666fbf6e84ce29d43c3cb5f9c388c664d43b33f02095313405a"
    ),
    "optdigits/optdigits-orig.tra": (
        "b0649058daf39b41da11827b6f9d784333e85e7362539fe7afd26fef517b4a3f"
    ),
    "optdigits/optdigits.tra": "e1b683cc211604fe8fd8c4417e6a69f31380e0c61d4af22e93cc21e9257ffedd",
    "unipen/unipen-1a-digits.npz": (
        "a8ce50375630fec57a8310e0998799d4efe4970ccf90e05c97b5a653e812601d"
    ),
    "pendigits/pendigits.tra": "e2b9eb9f0d0467e2b64a4816a3420edf2b8043447576f4b84337aba44a9f97d3",
}

#: Digits in each source.
N_MNIST, N_OPTDIGITS, N_SKLEARN = 60_000, 3_823, 1_797
N_UNIPEN, N_PENDIGITS = 13_583, 7_494


class DataFileError(RuntimeError):
    """A training data file is missing or does not match its recorded checksum."""


def _read_checked(name: str, data_dir: Path | None = None) -> bytes:
    path = (data_dir or DATA_DIR) / name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataFileError(f"training data file {path} cannot be read: {exc.strerror}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != CHECKSUMS[name]:
        raise DataFileError(
            f"training data file {path} has sha256 {digest[:12]}..., expected "
            f"{CHECKSUMS[name][:12]}... (see data/README.md)"
        )
    return data


def _read_table(name: str, *, columns: int) -> np.ndarray:
    """A checked file of comma-separated integers, one digit a line of ``columns`` values."""
    text = _read_checked(name).decode("ascii")
    table = np.array(
        [[int(v) for v in line.split(",")] for line in text.splitlines() if line.strip()]
    )
    if table.ndim != 2 or table.shape[1] != columns:
        raise DataFileError(f"{name}: expected {columns} comma-separated values a line")
    return table


def _read_only(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """The arrays, made read-only (the loaders' results are cached and shared)."""
    for array in arrays:
        array.setflags(write=False)
    return arrays


@functools.lru_cache(maxsize=1)
def load_mnist() -> tuple[np.ndarray, np.ndarray]:
    """MNIST's 60,000 training digits.

    Returns
    -------
    images : ndarray of shape (60000, 28, 28), uint8
        0 = paper, 255 = ink (read-only, cached).
    labels : ndarray of shape (60000,), int64
    """
    raw = gzip.decompress(_read_checked("mnist/train-images-idx3-ubyte.gz"))
    magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">u4")
    if magic != 2051 or (rows, cols) != (28, 28):
        raise DataFileError("MNIST images: unexpected IDX header")
    images = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(int(n), 28, 28)
    raw = gzip.decompress(_read_checked("mnist/train-labels-idx1-ubyte.gz"))
    magic, n_labels = np.frombuffer(raw[:8], dtype=">u4")
    if magic != 2049 or n_labels != n:
        raise DataFileError("MNIST labels: unexpected IDX header")
    labels = np.frombuffer(raw, dtype=np.uint8, offset=8).astype(np.int64)
    labels.setflags(write=False)
    return images, labels


@functools.lru_cache(maxsize=1)
def load_optdigits() -> tuple[np.ndarray, np.ndarray]:
    """optdigits' training part: 3,823 digits by 30 writers, as 8x8 counts.

    Returns
    -------
    X : ndarray of shape (3823, 64), float64, values 0..16 (read-only, cached)
    y : ndarray of shape (3823,), int64
    """
    table = _read_table("optdigits/optdigits.tra", columns=65)
    return _read_only(table[:, :64].astype(np.float64), table[:, 64].astype(np.int64))


@functools.lru_cache(maxsize=1)
def load_optdigits_bitmaps() -> tuple[np.ndarray, np.ndarray]:
    """The 32x32 bitmaps of the first 1,934 digits of :func:`load_optdigits`.

    Returns
    -------
    bitmaps : ndarray of shape (1934, 32, 32), bool (read-only, cached)
    labels : ndarray of shape (1934,), int64
    """
    lines = _read_checked("optdigits/optdigits-orig.tra").decode("ascii").splitlines()[21:]
    lines = [line.strip() for line in lines if line.strip()]
    if len(lines) % 33:
        raise DataFileError("optdigits-orig.tra: expected 32 bitmap lines and a label per digit")
    n = len(lines) // 33
    bitmaps = np.zeros((n, 32, 32), dtype=bool)
    labels = np.zeros(n, dtype=np.int64)
    for i in range(n):
        block = lines[33 * i : 33 * i + 33]
        bitmaps[i] = np.array([[c == "1" for c in row] for row in block[:32]])
        labels[i] = int(block[32])
    return _read_only(bitmaps, labels)


@functools.lru_cache(maxsize=1)
def load_sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 digits (UCI optdigits' test part, 13 writers), as 8x8 counts.

    Returns ``(X, y)`` as :func:`load_optdigits` does, with 1,797 rows.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    return _read_only(digits.data.astype(np.float64), digits.target.astype(np.int64))


@dataclass(frozen=True)
class PenDigits:
    """Digits written on a tablet, as strokes, with who wrote them.

    Attributes
    ----------
    traces : ndarray of shape (n_digits,), object
        One :class:`~predicciones.ml.strokes.Trace` a digit (y down).
    labels : ndarray of shape (n_digits,), int64
    writer : ndarray of shape (n_digits,), str
        An anonymised writer id (``<group>-<nn>``); empty where the source has none.
    group : ndarray of shape (n_digits,), str
        The contributing group (UNIPEN) or the source's name.
    """

    traces: np.ndarray
    labels: np.ndarray
    writer: np.ndarray
    group: np.ndarray


def _traces(strokes_per_digit) -> np.ndarray:
    traces = np.empty(len(strokes_per_digit), dtype=object)
    for i, strokes in enumerate(strokes_per_digit):
        traces[i] = Trace.from_points(strokes, y_up=True)
    traces.setflags(write=False)
    return traces


@functools.lru_cache(maxsize=1)
def load_unipen() -> PenDigits:
    """UNIPEN's isolated digits: 13,583 by 166 writers of 10 groups, as pen strokes."""
    try:
        with np.load(io.BytesIO(_read_checked("unipen/unipen-1a-digits.npz"))) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, KeyError) as exc:
        raise DataFileError(f"unipen-1a-digits.npz cannot be read: {exc}") from exc
    points, offsets = arrays["points"].astype(np.float64), arrays["stroke_offsets"]
    per_digit = arrays["sample_stroke_offsets"]
    labels = arrays["labels"].astype(np.int64)
    if len(per_digit) != len(labels) + 1 or per_digit[-1] != len(offsets) - 1:
        raise DataFileError("unipen-1a-digits.npz: stroke and digit offsets do not agree")
    strokes = [points[offsets[k] : offsets[k + 1]] for k in range(len(offsets) - 1)]
    digits = [strokes[per_digit[i] : per_digit[i + 1]] for i in range(len(labels))]
    labels.setflags(write=False)
    return PenDigits(_traces(digits), labels, arrays["writer"], arrays["source"])


@functools.lru_cache(maxsize=1)
def load_pendigits() -> PenDigits:
    """pendigits' training part: 7,494 digits by 30 writers, each 8 points along its path.

    The file has no writer ids: ``writer`` is empty. Each digit is one stroke (the path
    includes the pen-up moves, as the file was made).
    """
    table = _read_table("pendigits/pendigits.tra", columns=17)
    (labels,) = _read_only(table[:, 16].astype(np.int64))
    n = len(labels)
    traces = _traces([[row[:16].reshape(8, 2)] for row in table])
    return PenDigits(traces, labels, np.full(n, ""), np.full(n, "pendigits"))
