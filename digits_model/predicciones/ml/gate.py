"""The validation gate: does a candidate beat the live model on the same rows?

The rule, from the seed's strategy ("solo si supera a la versión actual en términos de
precisión y estabilidad"): the candidate must read better what it was retrained for, and
no worse what every model is judged on.

- **Gain**: the candidate's accuracy must exceed the live model's by at least
  ``min_improvement`` on the held-out feedback rows (the live traffic it was retrained
  for), or on all rows when fewer than :data:`MIN_FEEDBACK_ROWS` feedback rows are held
  out. The rows it won must also outnumber the rows it lost by more than noise (the sign
  test below): a gain of two rows out of sixty is not evidence.
- **Stability**: on the fixed base rows (real handwriting of many writers that no model
  trains on) the candidate may not lose more than ``min_improvement`` of accuracy, and no
  class may lose more than ``max_class_drop`` of recall over all rows. Classes with fewer
  than ``min_class_count`` validation rows are reported but not gated (a recall from three
  rows is noise).

Both models answer the same rows, so a class's loss is judged on the paired answers: the
rows of that class the live model read and the candidate does not (``lost``), and the
reverse (``won``). A drop beyond ``max_class_drop`` refuses the candidate only when it is
also more than noise, ``lost - won > CLASS_DROP_Z * sqrt(lost + won)`` (a one-sided sign
test at about 5 %): with 70 rows of a class, two rows read differently are a 3-point drop
but not evidence that the candidate is worse at that digit.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

import numpy as np

from .features import N_CLASSES

#: Defaults, overridable by settings and command flags.
MIN_IMPROVEMENT = 0.005
MAX_CLASS_DROP = 0.02
MIN_CLASS_COUNT = 10
#: z of the one-sided sign test a paired gain or loss must pass to count (5 %: 1.645).
CLASS_DROP_Z = 1.645
#: Held-out feedback rows from which the gain is judged on them rather than on all rows.
MIN_FEEDBACK_ROWS = 30


@dataclass(frozen=True)
class Scores:
    """Accuracy and per-class recall of one model on one set of rows."""

    accuracy: float
    recall: list[float | None]
    n: int

    @classmethod
    def of(cls, y_true: np.ndarray, y_pred: np.ndarray) -> Scores:
        y_true = np.asarray(y_true, dtype=int)
        y_pred = np.asarray(y_pred, dtype=int)
        recall = [
            float((y_pred[y_true == c] == c).mean()) if (y_true == c).any() else None
            for c in range(N_CLASSES)
        ]
        accuracy = float((y_pred == y_true).mean()) if len(y_true) else 0.0
        return cls(accuracy=accuracy, recall=recall, n=len(y_true))


@dataclass(frozen=True)
class GateResult:
    """Whether the candidate may be rolled out, and why (or why not)."""

    passed: bool
    candidate: Scores
    live: Scores
    improvement: float
    reasons: list[str] = field(default_factory=list)
    thresholds: dict = field(default_factory=dict)
    #: Which rows the gain was judged on: "feedback" or "all".
    judged_on: str = "all"
    #: The candidate's accuracy change on the base rows (None without feedback rows).
    base_change: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def evaluate_gate(
    y_true: np.ndarray,
    live_pred: np.ndarray,
    candidate_pred: np.ndarray,
    *,
    feedback: np.ndarray | None = None,
    min_improvement: float = MIN_IMPROVEMENT,
    max_class_drop: float = MAX_CLASS_DROP,
    min_class_count: int = MIN_CLASS_COUNT,
) -> GateResult:
    """Compare two models' predictions on exactly the same validation rows.

    Parameters
    ----------
    y_true, live_pred, candidate_pred : ndarray of shape (n_samples,), ints 0..9
    feedback : ndarray of shape (n_samples,), bool, optional
        Which rows are held-out feedback; the others are the fixed base rows.
    min_improvement : float
        Accuracy the candidate must gain (0.005 = half a point), and the most it may lose on
        the base rows.
    max_class_drop : float
        Largest recall any class may lose (beyond it, a loss must also pass the sign test).
    min_class_count : int
        Classes with fewer validation rows are not gated.
    """
    y_true = np.asarray(y_true, dtype=int)
    live_pred = np.asarray(live_pred, dtype=int)
    candidate_pred = np.asarray(candidate_pred, dtype=int)
    if len(y_true) == 0:
        raise ValueError("the validation set is empty")
    feedback = np.zeros(len(y_true), bool) if feedback is None else np.asarray(feedback, bool)
    live = Scores.of(y_true, live_pred)
    candidate = Scores.of(y_true, candidate_pred)
    live_right, candidate_right = live_pred == y_true, candidate_pred == y_true
    reasons = []
    judged = feedback if feedback.sum() >= MIN_FEEDBACK_ROWS else np.ones(len(y_true), bool)
    judged_on = "feedback" if judged is feedback else "all"
    improvement = float(candidate_right[judged].mean() - live_right[judged].mean())
    won = int((candidate_right & ~live_right & judged).sum())
    lost = int((live_right & ~candidate_right & judged).sum())
    where = "the held-out feedback" if judged_on == "feedback" else "the validation set"
    if improvement < min_improvement:
        reasons.append(
            f"accuracy on {where} {candidate_right[judged].mean():.4f} vs live "
            f"{live_right[judged].mean():.4f}: gain {improvement:+.4f} is below the required "
            f"{min_improvement:+.4f}"
        )
    elif min_improvement > 0 and won - lost <= CLASS_DROP_Z * np.sqrt(won + lost):
        reasons.append(
            f"gain on {where} is within noise: {won} rows won, {lost} lost (a sign test "
            "asks for more)"
        )
    base_change = None
    if judged_on == "feedback":
        base = ~feedback
        base_change = float(candidate_right[base].mean() - live_right[base].mean())
        if base_change < -min_improvement:
            reasons.append(
                f"accuracy on the base validation rows falls {live_right[base].mean():.4f} -> "
                f"{candidate_right[base].mean():.4f} (more than {min_improvement:.4f})"
            )
    counts = np.bincount(y_true, minlength=N_CLASSES)
    for c in range(N_CLASSES):
        if counts[c] < min_class_count:
            continue
        drop = live.recall[c] - candidate.recall[c]
        rows = y_true == c
        c_lost = int((live_right[rows] & ~candidate_right[rows]).sum())
        c_won = int((candidate_right[rows] & ~live_right[rows]).sum())
        if drop > max_class_drop and c_lost - c_won > CLASS_DROP_Z * np.sqrt(c_lost + c_won):
            reasons.append(
                f"class {c} recall falls {live.recall[c]:.3f} -> {candidate.recall[c]:.3f} "
                f"(more than {max_class_drop:.3f}; {c_lost} rows lost, {c_won} won)"
            )
    return GateResult(
        passed=not reasons,
        candidate=candidate,
        live=live,
        improvement=improvement,
        reasons=reasons,
        thresholds={
            "min_improvement": min_improvement,
            "max_class_drop": max_class_drop,
            "min_class_count": min_class_count,
            "min_feedback_rows": MIN_FEEDBACK_ROWS,
        },
        judged_on=judged_on,
        base_change=base_change,
    )


def in_feedback_holdout(image_sha256: str, percent: int) -> bool:
    """Whether a labelled prediction belongs to the validation slice (never trained on).

    Decided by a hash of the uploaded image's sha256: membership never changes as feedback
    grows, the same picture sent twice lands on one side only (no copy of a validation
    image among the training rows), and the split does not depend on the random query ids
    (so the canary split, which uses the ids' bits, is independent of it).
    """
    digest = hashlib.sha256(b"feedback-holdout:" + image_sha256.encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < percent


def validation_set_id(base_rows: int, feedback_ids: list[str]) -> str:
    """A short, stable id of a validation set's content (which rows it holds)."""
    digest = hashlib.sha256(f"base:{base_rows};".encode())
    for query_id in sorted(feedback_ids):
        digest.update(query_id.encode())
    return digest.hexdigest()[:16]
