"""Retraining: base data plus labelled feedback -> a candidate, gated against the live model.

Guards: enough new labels (not too little data), a cooldown since the last retrain (not too
often), and a validation gate (only if it beats the live version in accuracy and no class
regresses). The candidate and the live version are scored
on exactly the same rows: the base digits every model holds out, plus a fixed, hash-chosen
slice of the feedback that no candidate ever trains on, as far as trusted labellers gave it.

Anyone may label, so what anyone labels may not decide: untrusted labels are trained on (at
most ``DIGITS_FEEDBACK_SOURCE_CAP`` from any one source) but never judged on, and a version
trained on them is registered without being rolled out (``pipeline``, ``canary_review``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import sklearn
from django.conf import settings
from django.utils import timezone

from .. import storage
from ..exceptions import UnknownModelError
from ..ml import gate as gate_rules
from ..ml import splits, training
from ..ml.classifier import dump_classifier, predict
from ..ml.feedback import cap_per_source
from ..models import Deployment, RetrainRun
from ..options import RetrainOptions
from ..provenance import trusted_sources
from ..selectors import cooldown_remaining, feedback_set, new_label_count
from ..serving import load_version
from .registry import model_version_register

logger = logging.getLogger(__name__)


def model_retrain(*, model_name: str, options: RetrainOptions) -> RetrainRun:
    """Train a candidate if the guards allow, gate it, register it if it passes.

    Never changes what is live: rolling a registered candidate out is the caller's step
    (``run_pipeline`` starts a canary; an operator may use ``canary``/``promote``).
    Returns the recorded run (``status`` registered, refused or skipped, with reasons).
    """
    opts = options.resolved()
    try:
        deployment = Deployment.objects.select_related("model", "live").get(model__name=model_name)
    except Deployment.DoesNotExist:
        raise UnknownModelError(f"No deployed model named {model_name!r}.") from None
    run = RetrainRun(
        model=deployment.model,
        started_at=timezone.now(),
        trigger=opts.trigger,
        live_version=deployment.live,
        seed=opts.seed,
        n_new_labels=new_label_count(model_name),
    )
    reasons = _guard_reasons(run, model_name, opts)
    if reasons:
        return _finish(run, RetrainRun.Status.SKIPPED, reasons, save=not opts.dry_run)

    feedback = feedback_set(model_name, settings.DIGITS_FEEDBACK_HOLDOUT_PERCENT)
    use = feedback_use(feedback, trusted=trusted_sources(), cap=opts.source_cap)
    run.n_feedback_train = int(use.train.sum())
    run.n_feedback_validation = int(use.judged.sum())
    rows = _validation_rows(run, model_name, feedback, use)
    clf, statistics = training.train_classifier(
        seed=opts.seed,
        extra_X=feedback.X_train[use.train],
        extra_y=feedback.y_train[use.train],
        quick=opts.quick,
        n_jobs=2,
    )
    result = _gate(run, deployment, clf, rows, feedback, use, opts)
    if not result.passed:
        return _finish(run, RetrainRun.Status.REFUSED, result.reasons)
    version = _register(run, deployment, clf, statistics, result, use, opts)
    return _finish(
        run,
        RetrainRun.Status.REGISTERED,
        [f"candidate {version} beats live {deployment.live} by {result.improvement:+.4f} accuracy"],
    )


def _guard_reasons(run: RetrainRun, model_name: str, opts: RetrainOptions) -> list[str]:
    """Why not to train now (cooldown, too few new labels, a dry run); empty: train."""
    reasons = []
    remaining = cooldown_remaining(model_name, opts.cooldown_hours)
    if remaining is not None:
        reasons.append(
            f"cooldown: last retrain less than {opts.cooldown_hours:g} h ago; next allowed in "
            f"{remaining.total_seconds() / 3600:.1f} h"
        )
    if run.n_new_labels < opts.min_samples:
        reasons.append(f"not enough new labelled samples: {run.n_new_labels} < {opts.min_samples}")
    if opts.dry_run:
        reasons.append("dry run: nothing trained or registered")
    return reasons


@dataclass(frozen=True)
class ValidationRows:
    """The rows the gate judges on: the base holdout (the first ``n_base``), then the
    held-out feedback of trusted sources."""

    X: np.ndarray
    y: np.ndarray
    n_base: int


def _validation_rows(run: RetrainRun, model_name: str, feedback, use) -> ValidationRows:
    """The gate's rows, recorded in the store under the validation set's id (on ``run``)."""
    X_base_val, y_base_val = splits.base_validation_set(n_jobs=2)
    # The gate judges on rows the labellers it cannot trust never wrote: the base holdout and
    # the held-out labels of trusted keys. Untrusted held-out labels are scored for the record.
    X_val = np.vstack([X_base_val, feedback.X_validation[use.judged]])
    y_val = np.concatenate([y_base_val, feedback.y_validation[use.judged]])
    judged_ids = [qid for qid, j in zip(feedback.validation_ids, use.judged, strict=True) if j]
    run.validation_set = gate_rules.validation_set_id(len(y_base_val), judged_ids)
    _store_validation_set(model_name, run.validation_set, X_val, y_val, len(y_base_val))
    return ValidationRows(X=X_val, y=y_val, n_base=len(y_base_val))


def _gate(run: RetrainRun, deployment, clf, rows: ValidationRows, feedback, use, opts):
    """Judge the candidate against the live version on the same rows; the parts' scores
    and the provenance of the data go on ``run.gate``."""
    live = load_version(deployment.live)
    result = gate_rules.evaluate_gate(
        rows.y,
        _predict(live.clf, rows.X),
        _predict(clf, rows.X),
        feedback=np.arange(len(rows.y)) >= rows.n_base,
        min_improvement=opts.min_improvement,
        max_class_drop=opts.max_class_drop,
    )
    run.gate = {
        **result.as_dict(),
        "feedback_part": _part_scores(rows.y, live.clf, clf, rows.X, slice(rows.n_base, None)),
        "base_part": _part_scores(rows.y, live.clf, clf, rows.X, slice(0, rows.n_base)),
        "untrusted_feedback_part": _part_scores(
            feedback.y_validation[~use.judged],
            live.clf,
            clf,
            feedback.X_validation[~use.judged],
            slice(None),
        ),
        "provenance": use.as_dict(),
    }
    return result


def _register(run: RetrainRun, deployment, clf, statistics, result, use, opts):
    """Register the gated candidate as a new version of the model (not live); on ``run``."""
    metrics = {
        "validation": {
            "set": run.validation_set,
            "accuracy": result.candidate.accuracy,
            "recall": result.candidate.recall,
            "n": result.candidate.n,
            "live_accuracy": result.live.accuracy,
        },
        # The same rows for every version (the shipped model's "validation"), so that
        # listings compare versions on equal terms.
        "base_holdout": {
            "accuracy": run.gate["base_part"]["candidate_accuracy"],
            "n": run.gate["base_part"]["n"],
        },
        "seed": opts.seed,
        "sklearn_version": sklearn.__version__,
    }
    run.candidate_version = model_version_register(
        name=deployment.model.name,
        artifact=dump_classifier(clf),
        statistics=statistics,
        metrics=metrics,
        sklearn_version=sklearn.__version__,
        training_data={
            "base": splits.BASE_DESCRIPTION,
            "feedback_rows": run.n_feedback_train,
            "trusted_feedback_rows": use.trained_trusted,
            "untrusted_feedback_rows": use.trained_untrusted,
            "feedback_sources": use.train_sources,
            "feedback_until": run.started_at.isoformat(),
            "validation_set": run.validation_set,
        },
        parent=deployment.live,
        created_by=f"retrain ({opts.trigger}, seed {opts.seed})",
    )
    return run.candidate_version


@dataclass(frozen=True)
class FeedbackUse:
    """Which feedback rows a retrain trains on and which the gate judges on, and why."""

    #: Over the feedback's training rows: trained on (after the per-source cap).
    train: np.ndarray
    #: Over the held-out rows: from a trusted source, so part of the gate's decision.
    judged: np.ndarray
    trained_trusted: int
    trained_untrusted: int
    train_sources: int
    capped: int
    cap: int
    trusted_keys: int

    def as_dict(self) -> dict:
        return {
            "trained_trusted": self.trained_trusted,
            "trained_untrusted": self.trained_untrusted,
            "train_sources": self.train_sources,
            "capped": self.capped,
            "cap": self.cap,
            "judged_trusted": int(self.judged.sum()),
            "held_out_untrusted": int((~self.judged).sum()),
            "trusted_keys": self.trusted_keys,
        }


def feedback_use(feedback, *, trusted: frozenset[str], cap: int) -> FeedbackUse:
    """Cap each untrusted source's training rows (``ml.feedback``) and keep, of the held-out
    rows, those from trusted sources for the gate."""
    train = cap_per_source(feedback.train_sources, cap, exempt=trusted)
    trusted_train = np.array([source in trusted for source in feedback.train_sources], bool)
    judged = np.array([source in trusted for source in feedback.validation_sources], bool)
    kept_sources = {
        source for source, kept in zip(feedback.train_sources, train, strict=True) if kept
    }
    return FeedbackUse(
        train=train,
        judged=judged.reshape(-1),
        trained_trusted=int((train & trusted_train).sum()),
        trained_untrusted=int((train & ~trusted_train).sum()),
        train_sources=len(kept_sources),
        capped=int((~train).sum()),
        cap=cap,
        trusted_keys=len(trusted),
    )


def _predict(clf, X: np.ndarray) -> np.ndarray:
    return predict(clf, X)[0]


def _part_scores(y, live_clf, candidate_clf, X, part: slice) -> dict:
    y_part = y[part]
    if len(y_part) == 0:
        return {"n": 0}
    live = gate_rules.Scores.of(y_part, _predict(live_clf, X[part]))
    candidate = gate_rules.Scores.of(y_part, _predict(candidate_clf, X[part]))
    return {
        "n": len(y_part),
        "live_accuracy": live.accuracy,
        "candidate_accuracy": candidate.accuracy,
    }


def _store_validation_set(model_name, set_id, X, y, n_base) -> None:
    key = f"validation/{model_name}/{set_id}.json"
    store = storage.get_store()
    if not store.exists(key):
        storage.put_json(
            store,
            key,
            {"n_base": int(n_base), "X": np.asarray(X, dtype=int).tolist(), "y": y.tolist()},
        )


def _finish(run: RetrainRun, status: str, reasons: list[str], save: bool = True) -> RetrainRun:
    run.status = status
    run.reasons = reasons
    run.finished_at = timezone.now()
    if save:
        run.save()
    logger.info("retrain of %s: %s (%s)", run.model.name, status, "; ".join(reasons))
    return run
