"""The scheduled pipeline: review a running canary, check drift, maybe retrain, roll out.

One pass, for cron: (1) a running canary is reviewed first (promoted, rolled back, or left
to gather traffic, in which case nothing else happens); (2) drift is checked on the live
version's recent inputs; (3) a retrain is attempted when there are enough new labels and
either drift was found or the labels alone are plenty; (4) a candidate that passed the gate
is rolled out as a canary (or blue/green: warmed at 0 %, then switched whole), unless it was
trained on labels from untrusted sources: then it waits for an operator.

Every option is checked before the first step, and a dry run records nothing anywhere.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from .. import selectors
from ..exceptions import PrediccionesError
from ..models import Deployment, DriftReport
from ..options import PipelineOptions
from ..serving import load_version
from ..storage import StoreError
from . import registry
from .canary_review import canary_review
from .drift import drift_report_create
from .retraining import model_retrain

logger = logging.getLogger(__name__)

#: Failures a step may end with; the pass then reports what it had done (anything else is a bug
#: and propagates).
STEP_ERRORS = (PrediccionesError, StoreError, DatabaseError)


def pipeline_run(*, model_name: str, options: PipelineOptions) -> dict:
    """Run one pass and return what it decided and why (the ``--json`` document).

    Every option is checked, and the model looked up, before anything is done: OperatorError or
    UnknownModelError then, with nothing changed. A step that fails later does not lose the
    account of the steps before it: the document comes back with ``status`` "failed", the
    failing ``step`` and its ``error``, and an ``outcome`` sentence that says what was done
    (a candidate registered but not rolled out, say). Otherwise ``status`` is "ok".
    """
    options = options.resolved()
    selectors.model_get(name=model_name)
    summary: dict = {
        "model": model_name,
        "started_at": timezone.now().isoformat(),
        "dry_run": options.dry_run,
        "status": "ok",
    }
    done: list[str] = []
    try:
        _pass(model_name, options, summary, done)
    except STEP_ERRORS as exc:
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        summary["status"] = "failed"
        summary["error"] = message.splitlines()[0]
        if summary["step"] == "rollout":
            done[-1] += ", not rolled out"
        done.append(f"the {summary['step']} step failed: {summary['error']}")
    else:
        del summary["step"]
    summary["outcome"] = ("dry run, nothing recorded: " if options.dry_run else "") + "; ".join(
        done
    )
    return _done(summary)


def _pass(model_name: str, options: PipelineOptions, summary: dict, done: list[str]) -> None:
    """The steps of one pass, filling ``summary`` and ``done`` (phrases) as they go; each
    step names itself in ``summary["step"]`` before it starts."""
    if not _review_step(model_name, options, summary, done):
        return
    report = _drift_step(model_name, options, summary)
    trigger = _decision_step(model_name, options, report, summary, done)
    if trigger is None:
        return
    candidate = _retrain_step(model_name, options, trigger, summary, done)
    if candidate is not None:
        _rollout_step(model_name, options, candidate, summary, done)


def _review_step(model_name: str, options: PipelineOptions, summary: dict, done) -> bool:
    """Review a running canary; False while it is still gathering traffic (the pass stops)."""
    summary["step"] = "canary_review"
    review = canary_review(
        model_name=model_name,
        min_requests=options.canary_min_requests,
        apply=not options.dry_run,
        actor="run_pipeline",
    )
    summary["canary_review"] = review.as_dict()
    if review.decision != "none":
        done.append(review.sentence())
    if review.decision == "wait":
        summary["decision"] = {
            "retrain": False,
            "reasons": ["a canary is still gathering traffic; no retrain until it is decided"],
        }
        return False
    return True


def _drift_step(model_name: str, options: PipelineOptions, summary: dict) -> DriftReport:
    """Check the live version's last ``drift_last`` predictions for drift."""
    summary["step"] = "drift"
    report = drift_report_create(name=model_name, last=options.drift_last, save=not options.dry_run)
    summary["drift"] = {
        "status": report.status,
        "severity": report.severity,
        "score": report.score,
        "drifted_share": report.drifted_share,
        "n_current": report.n_current,
        "version": report.model_version.version,
        "report_id": report.pk,
    }
    return report


def _decision_step(model_name, options: PipelineOptions, report, summary, done) -> str | None:
    """Whether to retrain: the trigger ("drift" or "labels"), or None, with the reasons."""
    summary["step"] = "decision"
    labels = selectors.new_label_count(model_name)
    min_samples = options.retrain.min_samples
    without_drift = options.min_samples_without_drift
    drifted = report.status == DriftReport.Status.DRIFT
    if drifted and labels >= min_samples:
        trigger = "drift"
        reasons = [f"drift ({report.severity}) and {labels} new labels (>= {min_samples})"]
    elif labels >= without_drift:
        trigger = "labels"
        reasons = [f"{labels} new labels (>= {without_drift}, enough without drift)"]
    else:
        trigger = None
        need = min_samples if drifted else without_drift
        reasons = [
            f"{'drift found' if drifted else 'no drift'} ({report.status}) and {labels} new "
            f"labels: {need} needed to retrain"
        ]
    summary["decision"] = {"retrain": trigger is not None, "trigger": trigger, "reasons": reasons}
    if trigger is None:
        done.append(f"nothing retrained ({reasons[0]})")
    return trigger


def _retrain_step(model_name, options: PipelineOptions, trigger: str, summary, done):
    """Retrain behind the gate; the registered candidate, unless none was or it is held."""
    summary["step"] = "retrain"
    options.retrain.trigger = trigger
    run = model_retrain(model_name=model_name, options=options.retrain)
    summary["retrain"] = run.as_dict()
    if run.candidate_version is None:
        done.append(f"no new version: retrain {run.status} ({'; '.join(run.reasons)})")
        return None
    candidate = run.candidate_version
    done.append(f"{candidate} registered")
    held = rollout_held_reason(candidate)
    if held:
        summary["held"] = {"version": candidate.version, "reason": held}
        done[-1] = f"{candidate} registered, not rolled out: {held}"
        return None
    return candidate


def _rollout_step(model_name, options: PipelineOptions, candidate, summary, done) -> None:
    """Start the candidate's rollout: a canary, or a blue/green switch."""
    summary["step"] = "rollout"
    summary["rollout"] = rollout = rollout_start(
        model_name=model_name,
        version=candidate,
        strategy=options.strategy,
        percent=options.canary_percent,
    )
    done[-1] = (
        f"{candidate} registered and rolled out as a canary at {rollout['percent']} %"
        if rollout["strategy"] == "canary"
        else f"{candidate} registered and switched live (blue/green)"
    )


def rollout_held_reason(version) -> str | None:
    """Why a version may not be rolled out without an operator, or None when it may."""
    if version.untrusted_feedback_rows and not settings.DIGITS_ROLLOUT_UNTRUSTED_FEEDBACK:
        return (
            f"it was trained on {version.untrusted_feedback_rows} labels from untrusted sources; "
            "an operator may canary or promote it (DIGITS_ROLLOUT_UNTRUSTED_FEEDBACK=1 lets "
            "the pipeline do it)"
        )
    return None


def rollout_start(*, model_name: str, version, strategy: str, percent: int | None) -> dict:
    """Start rolling out a gated candidate: a canary, or blue/green (warm at 0 %, switch)."""
    if strategy == "canary":
        percent = settings.DIGITS_CANARY_PERCENT if percent is None else percent
        registry.deployment_set_candidate(
            name=model_name, version=version.version, percent=percent, actor="run_pipeline"
        )
        return {"strategy": "canary", "version": version.version, "percent": percent}
    registry.deployment_set_candidate(
        name=model_name, version=version.version, percent=0, actor="run_pipeline"
    )
    load_version(version)  # the artifact loads and its digest matches, here too
    # Workers load a standby version on their next routing refresh: give them two.
    time.sleep(2 * settings.DIGITS_ROUTING_TTL)
    registry.deployment_promote(
        name=model_name,
        version=version.version,
        actor="run_pipeline",
        reason="blue/green switch after warm-up",
    )
    live = Deployment.objects.get(model__name=model_name).live
    return {"strategy": "bluegreen", "version": live.version, "percent": 100}


def _done(summary: dict) -> dict:
    summary["finished_at"] = timezone.now().isoformat()
    logger.info("pipeline for %s %s: %s", summary["model"], summary["status"], summary["outcome"])
    return summary
