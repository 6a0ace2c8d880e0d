"""The base digits, split by writer into training, validation and calibration, drawn as rows.

Three parts of the base data, fixed by index or by writer, so that every model is judged
alike:

- **validation**: MNIST, ``load_digits`` and pendigits digits with ``index % 10 == 9``,
  and every digit of the UNIPEN writers numbered ``nn % 10 == 9`` within their group. No
  model trains on them; the retraining gate scores every candidate on them.
- **calibration**: the second half of ``load_digits`` (its writers differ from the first
  half's: the set is ordered by writer), minus its validation digits, and the UNIPEN
  writers numbered ``nn % 10 == 8``. No model trains on them; the confidence's
  temperature is fitted on them, sent as uploads (:func:`calibration_uploads`): writers
  the fitted model never saw, from two sources.
- **train**: everything else.

Every digit is drawn as a picture (clean, and ``n_augment`` times distorted) and sent
through the same :func:`~predicciones.ml.preprocessing.preprocess` as an upload
(:mod:`~predicciones.ml.augment`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import sources
from .augment import Distortion, training_features
from .features import N_FEATURES
from .recipe import N_AUGMENT, TRAINING_DISTORTION
from .synth import PEN_STYLES, STYLES
from .validation import styled_features

#: The base data, in the order rows are stacked.
SOURCES = ("mnist", "optdigits", "sklearn", "unipen", "pendigits")
#: Sources written with a pen on a tablet, kept as strokes.
PEN_SOURCES = ("unipen", "pendigits")
#: A digit's id is its source's offset plus its index there; ids seed its renderings, so a
#: digit looks the same whatever else is rendered with it.
ID_OFFSET = {
    "mnist": 0,
    "optdigits": 100_000,
    "sklearn": 200_000,
    "unipen": 300_000,
    "pendigits": 400_000,
}
#: Digits of these sources with ``index % 10 == 9`` are the fixed validation set.
HOLDOUT_MODULUS, HOLDOUT_REMAINDER = 10, 9
VALIDATION_SOURCES = ("mnist", "sklearn", "pendigits")
#: ``load_digits`` rows from here on (its second half: other writers) calibrate.
CALIBRATION_START = 898
#: UNIPEN is split by writer: the writers numbered ``nn`` within their group with
#: ``nn % 10`` equal to these are validation (13 writers, 1,122 digits) and calibration
#: (14 writers, 1,114 digits). Groups of fewer than 8 writers (gmd, art, uqb) are trained on
#: whole; ``bench/leave_one_out.py`` reads every group as writers never trained on.
WRITER_VALIDATION, WRITER_CALIBRATION = 9, 8
#: Ids of feedback rows' renderings (they seed them), apart from every base source's.
FEEDBACK_ID_OFFSET = 900_000
#: Seed of the validation and calibration renderings: fixed, so every model sees the same.
VALIDATION_SEED = 12345
#: Distorted copies of each ``load_digits`` validation digit (besides the clean one).
VALIDATION_AUGMENT = 2

#: What the base training data is, for manifests and the registry.
BASE_DESCRIPTION = (
    "MNIST training digits, optdigits' 3,823, load_digits, UNIPEN's pen-written digits and "
    "pendigits, minus the validation holdout (MNIST, load_digits and pendigits index % 10 "
    "== 9, UNIPEN writers numbered nn % 10 == 9) and the calibration writers (load_digits' "
    "second half, UNIPEN writers nn % 10 == 8); each digit drawn clean and distorted, then "
    "preprocessed like an upload"
)


@dataclass(frozen=True)
class Rows:
    """Rows in the model's format and where each came from.

    Attributes
    ----------
    X : ndarray of shape (n_rows, 64), uint8, values 0..16
    y : ndarray of shape (n_rows,), int
    ids : ndarray of shape (n_rows,), int
        The digit's id (:data:`ID_OFFSET` plus its index in its source).
    variant : ndarray of shape (n_rows,), int
        0 for the clean rendering, 1.. for distorted copies.
    """

    X: np.ndarray
    y: np.ndarray
    ids: np.ndarray
    variant: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    @classmethod
    def concat(cls, parts: list[Rows]) -> Rows:
        if not parts:
            return cls(np.zeros((0, N_FEATURES), np.uint8), *(np.zeros(0, np.int64),) * 3)
        fields = ("X", "y", "ids", "variant")
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))


def source_of(ids: np.ndarray) -> np.ndarray:
    """The source name of each digit id."""
    ids = np.asarray(ids)
    names = np.array(SOURCES)
    offsets = np.array([ID_OFFSET[s] for s in SOURCES])
    return names[np.searchsorted(offsets, ids, side="right") - 1]


def writer_number(writer: np.ndarray) -> np.ndarray:
    """The ``nn`` of UNIPEN writer ids ``<group>-<nn>``."""
    return np.array([int(str(w).rpartition("-")[2]) for w in np.asarray(writer).ravel()])


def digit_part(source: str, index: np.ndarray) -> np.ndarray:
    """``"train"``, ``"validation"`` or ``"calibration"`` for each index of a source."""
    index = np.asarray(index)
    part = np.full(index.shape, "train", dtype=object)
    if source in VALIDATION_SOURCES:
        part[index % HOLDOUT_MODULUS == HOLDOUT_REMAINDER] = "validation"
    if source == "sklearn":
        part[(index >= CALIBRATION_START) & (part == "train")] = "calibration"
    if source == "unipen":
        number = writer_number(sources.load_unipen().writer[index]) % HOLDOUT_MODULUS
        part[number == WRITER_VALIDATION] = "validation"
        part[number == WRITER_CALIBRATION] = "calibration"
    return part


def source_forms(source: str) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A source's digits as (digits, labels, index) groups, one group per form."""
    if source == "mnist":
        images, labels = sources.load_mnist()
        return [(images, labels, np.arange(len(labels)))]
    if source == "optdigits":
        X, y = sources.load_optdigits()
        bitmaps, _ = sources.load_optdigits_bitmaps()
        n = len(bitmaps)
        # Where the 32x32 bitmap exists it is drawn, not the coarser counts made from it.
        return [(bitmaps, y[:n], np.arange(n)), (X[n:], y[n:], np.arange(n, len(y)))]
    if source == "sklearn":
        X, y = sources.load_sklearn_digits()
        return [(X, y, np.arange(len(y)))]
    if source in PEN_SOURCES:
        pen = sources.load_unipen() if source == "unipen" else sources.load_pendigits()
        return [(pen.traces, pen.labels, np.arange(len(pen.labels)))]
    raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")


def base_rows(
    *,
    part: str = "train",
    seed: int = 0,
    n_augment: int | dict[str, int] = N_AUGMENT,
    distortion: Distortion = TRAINING_DISTORTION,
    sources_: tuple[str, ...] = SOURCES,
    step: int = 1,
    n_jobs: int = 1,
) -> Rows:
    """One part of the base digits, rendered, distorted and preprocessed like uploads.

    Parameters
    ----------
    part : {"train", "validation", "calibration"}
    seed : int
        Seeds every rendering (per digit, so the result does not depend on ``n_jobs``).
    n_augment : int or dict
        Distorted copies per digit, besides the clean one (a dict: per source).
    distortion : Distortion
    sources_ : tuple of str
        Which of :data:`SOURCES` to use.
    step : int
        Keep one digit in ``step`` of each source's part (tests use a cheap subset).
    n_jobs : int
        Processes rendering the pictures.

    Returns
    -------
    Rows
    """
    parts = []
    for source in sources_:
        for digits, labels, index in source_forms(source):
            keep = np.flatnonzero(digit_part(source, index) == part)[::step]
            if not len(keep):
                continue
            F, which, variant = training_features(
                digits[keep],
                n_augment=n_augment[source] if isinstance(n_augment, dict) else n_augment,
                seed=seed,
                distortion=distortion,
                n_jobs=n_jobs,
                ids=ID_OFFSET[source] + index[keep],
                labels=labels[keep],
            )
            parts.append(
                Rows(F, labels[keep][which], ID_OFFSET[source] + index[keep][which], variant)
            )
    return Rows.concat(parts)


def calibration_uploads(
    *, step: int = 1, n_jobs: int = 1, with_ids: bool = False
) -> tuple[np.ndarray, ...]:
    """The calibration writers' digits sent as uploads, as image bytes read back.

    ``load_digits``' second-half writers are drawn in the five styles of
    :data:`~predicciones.ml.synth.STYLES`; the UNIPEN calibration writers, who wrote with a
    pen, in those and on the page's canvas (:data:`~predicciones.ml.synth.PEN_STYLES`).

    Parameters
    ----------
    step : int
        Keep one calibration digit in ``step`` of each class of each source (tests use a
        cheap subset; every class keeps at least one digit).
    n_jobs : int
        Processes drawing and reading the uploads.
    with_ids : bool
        Also return each row's digit id (a leave-one-group-out run drops a group's).

    Returns
    -------
    X : ndarray of shape (n_rows, 64), uint8, values 0..16
    y : ndarray of shape (n_rows,), int
        An upload the preprocessing refuses is left out.
    ids : ndarray of shape (n_rows,), int
        Only with ``with_ids``.
    """
    X, y, ids = [], [], []
    for source, styles in (("sklearn", STYLES), ("unipen", PEN_STYLES)):
        ((digits, labels, index),) = source_forms(source)
        part = digit_part(source, index) == "calibration"
        keep = np.sort(
            np.concatenate([np.flatnonzero(part & (labels == c))[::step] for c in range(10)])
        )
        features, accepted = styled_features(
            digits[keep],
            ID_OFFSET[source] + index[keep],
            seed=VALIDATION_SEED,
            styles=styles,
            n_jobs=n_jobs,
        )
        X.append(features[accepted])
        y.append(np.repeat(labels[keep], accepted.sum(axis=1)).astype(np.int64))
        ids.append(np.repeat(ID_OFFSET[source] + index[keep], accepted.sum(axis=1)))
    X, y, ids = np.concatenate(X), np.concatenate(y), np.concatenate(ids)
    return (X, y, ids) if with_ids else (X, y)


def unipen_group(ids: np.ndarray) -> np.ndarray:
    """The UNIPEN group of each digit id, ``""`` for digits of the other sources."""
    ids = np.asarray(ids)
    group = np.full(ids.shape, "", dtype=object)
    inside = source_of(ids) == "unipen"
    group[inside] = sources.load_unipen().group[ids[inside] - ID_OFFSET["unipen"]]
    return group


_VALIDATION_CACHE: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def base_validation_set_with_ids(n_jobs: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The validation rows with their digit ids, rendered once per process."""
    if "rows" not in _VALIDATION_CACHE:
        kwargs = {"part": "validation", "seed": VALIDATION_SEED, "n_jobs": n_jobs}
        drawn = ("sklearn", "unipen", "pendigits")
        drawn_rows = base_rows(n_augment=VALIDATION_AUGMENT, sources_=drawn, **kwargs)
        mnist_rows = base_rows(n_augment=0, sources_=("mnist",), **kwargs)
        rows = Rows.concat([drawn_rows, mnist_rows])
        X, y, ids = rows.X.astype(np.float64), rows.y, rows.ids
        for a in (X, y, ids):
            a.setflags(write=False)
        _VALIDATION_CACHE["rows"] = (X, y, ids)
    return _VALIDATION_CACHE["rows"]


def base_validation_set(*, n_jobs: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The fixed validation rows: held-out base digits no model trains on.

    Real handwriting of many writers from four sources: the ``load_digits`` holdout (180
    digits), UNIPEN's validation writers (13 writers of 7 groups, 1,122 digits) and
    pendigits' tenth (749 digits), each drawn clean and twice distorted, and MNIST's 10 %
    slice (6,000 digits, as the 28x28 crops they are).

    Parameters
    ----------
    n_jobs : int
        Processes rendering them the first time (the rows do not depend on it).

    Returns
    -------
    X : ndarray of shape (n_rows, 64), float64, values 0..16 (read-only, cached)
    y : ndarray of shape (n_rows,), int
    """
    X, y, _ = base_validation_set_with_ids(n_jobs)
    return X, y
