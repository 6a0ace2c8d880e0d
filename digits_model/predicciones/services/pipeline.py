"""The scheduled pipeline: review a running canary, check drift, maybe retrain, roll out.

One pass, for cron: (1) a running canary is reviewed first (promoted, rolled back, or left
to gather traffic, in which case nothing else happens); (2) drift is checked on the live
version's recent inputs; (3) a retrain is attempted when there are enough new labels and
either drift was found or the labels alone are plenty; (4) a candidate that passed the gate
is rolled out as a canary (or blue/green: warmed at 0 %, then switched whole).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from ..models import Deployment
from ..serving import load_version
from . import registry
from .canary import canary_review
from .drift import drift_report_create
from .retraining import RetrainOptions, model_retrain, new_label_count

logger = logging.getLogger(__name__)

STRATEGIES = ("canary", "bluegreen")


@dataclass
class PipelineOptions:
    retrain: RetrainOptions = field(default_factory=RetrainOptions)
    min_samples_without_drift: int | None = None
    strategy: str = "canary"
    canary_percent: int | None = None
    canary_min_requests: int | None = None
    drift_last: int | None = None
    dry_run: bool = False


def pipeline_run(*, model_name: str, options: PipelineOptions) -> dict:
    """Run one pass and return what it decided and why (the ``--json`` document)."""
    if options.strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}")
    summary: dict = {"model": model_name, "started_at": timezone.now().isoformat()}

    review = canary_review(
        model_name=model_name,
        min_requests=options.canary_min_requests,
        apply=not options.dry_run,
        actor="run_pipeline",
    )
    summary["canary_review"] = review.as_dict()
    if review.decision == "wait":
        summary["decision"] = {
            "retrain": False,
            "reasons": ["a canary is still gathering traffic; no retrain until it is decided"],
        }
        return _done(summary)

    report = drift_report_create(name=model_name, last=options.drift_last)
    summary["drift"] = {
        "status": report.status,
        "severity": report.severity,
        "score": report.score,
        "drifted_share": report.drifted_share,
        "n_current": report.n_current,
        "version": report.model_version.version,
        "report_id": report.pk,
    }

    labels = new_label_count(model_name)
    retrain_opts = options.retrain.resolved()
    without_drift = (
        settings.DIGITS_RETRAIN_MIN_SAMPLES_WITHOUT_DRIFT
        if options.min_samples_without_drift is None
        else options.min_samples_without_drift
    )
    drifted = report.status == "drift"
    if drifted and labels >= retrain_opts.min_samples:
        trigger = "drift"
        reasons = [
            f"drift ({report.severity}) and {labels} new labels (>= {retrain_opts.min_samples})"
        ]
    elif labels >= without_drift:
        trigger = "labels"
        reasons = [f"{labels} new labels (>= {without_drift}, enough without drift)"]
    else:
        trigger = None
        need = retrain_opts.min_samples if drifted else without_drift
        reasons = [
            f"{'drift found' if drifted else 'no drift'} ({report.status}) and {labels} new "
            f"labels: {need} needed to retrain"
        ]
    summary["decision"] = {"retrain": trigger is not None, "trigger": trigger, "reasons": reasons}
    if trigger is None:
        return _done(summary)

    retrain_opts.trigger = trigger
    retrain_opts.dry_run = options.dry_run
    from ..management.commands.retrain import retrain_summary

    run = model_retrain(model_name=model_name, options=retrain_opts)
    summary["retrain"] = retrain_summary(run)
    if run.candidate_version is not None:
        summary["rollout"] = rollout_start(
            model_name=model_name,
            version=run.candidate_version,
            strategy=options.strategy,
            percent=options.canary_percent,
        )
    return _done(summary)


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
        name=model_name, actor="run_pipeline", reason="blue/green switch after warm-up"
    )
    live = Deployment.objects.get(model__name=model_name).live
    return {"strategy": "bluegreen", "version": live.version, "percent": 100}


def _done(summary: dict) -> dict:
    summary["finished_at"] = timezone.now().isoformat()
    logger.info("pipeline for %s: %s", summary["model"], summary.get("decision"))
    return summary
