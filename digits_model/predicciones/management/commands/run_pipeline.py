"""One pass of the drift -> retrain -> gate -> rollout pipeline, for cron.

Reviews a running canary first; then checks drift, retrains only with enough new labels
(fewer when drift was found) and outside the cooldown, and starts a canary (or a blue/green
switch) for a candidate that passed the validation gate. Every option is checked before the
first step. Exit codes as check_drift: 0 ran, 1 drift found with --fail-on-drift, 2 could not
run; when a step fails after others did their part, the account of the pass (with --json, the
JSON document) is printed before the one-line error.
"""

from django.conf import settings
from django.core.management.base import CommandError

from predicciones.management.base import (
    OperatorCommand,
    canary_percent,
    non_negative_int,
    positive_int,
)
from predicciones.management.retrain_options import add_retrain_arguments, retrain_options
from predicciones.models import DriftReport
from predicciones.options import STRATEGIES, PipelineOptions
from predicciones.services.pipeline import pipeline_run

#: Options passed to the pipeline as they are named.
PIPELINE_OPTIONS = (
    "min_samples_without_drift",
    "strategy",
    "canary_percent",
    "canary_min_requests",
    "dry_run",
)


class Command(OperatorCommand):
    help = "Review canary, check drift, retrain behind the gate, roll the winner out."

    def add_arguments(self, parser):
        add_retrain_arguments(parser)  # --min-samples: new labels needed when drift is found
        parser.add_argument(
            "--min-samples-without-drift",
            type=non_negative_int,
            help="New labels needed without drift.",
        )
        parser.add_argument("--strategy", choices=STRATEGIES, default="canary")
        parser.add_argument(
            "--canary-percent", type=canary_percent, help="Traffic share of a new canary (1..99)."
        )
        parser.add_argument(
            "--canary-min-requests",
            type=positive_int,
            help="Requests a running canary needs before its review.",
        )
        parser.add_argument(
            "--last", type=positive_int, help="Drift window: the last N predictions."
        )
        parser.add_argument("--fail-on-drift", action="store_true")

    def handle(self, *args, **opts):
        summary = pipeline_run(
            model_name=opts["model"] or settings.DIGITS_DEFAULT_MODEL,
            options=PipelineOptions(
                retrain=retrain_options(opts),
                drift_last=opts["last"],
                **{name: opts[name] for name in PIPELINE_OPTIONS},
            ),
        )
        self.write_account(summary, render_summary, as_json=opts["json"])
        if (
            opts["fail_on_drift"]
            and summary.get("drift", {}).get("status") == DriftReport.Status.DRIFT
        ):
            raise CommandError("drift found", returncode=1)


def render_summary(summary: dict) -> str:
    """The pass in sentences, numbers rounded (``--json`` has them whole)."""
    lines = []
    review = summary.get("canary_review")
    if review is not None:
        lines.append(f"Canary review: {_review_words(review)}.")
    drift = summary.get("drift")
    if drift is not None:
        lines.append(f"Drift check: {_drift_words(drift)}.")
    decision = summary.get("decision")
    if decision is not None:
        verdict = "yes" if decision["retrain"] else "no"
        lines.append(f"Retrain: {verdict}, {'; '.join(decision['reasons'])}.")
    retrain = summary.get("retrain")
    if retrain is not None:
        lines.append(f"Retrain {retrain['status']}: {'; '.join(retrain['reasons'])}.")
        gate = retrain.get("gate") or {}
        if gate.get("candidate"):
            lines.append(
                f"  On the same {gate['candidate']['n']} validation rows: candidate "
                f"{gate['candidate']['accuracy']:.3f}, live {gate['live']['accuracy']:.3f}."
            )
    outcome = summary["outcome"]
    lines.append(("Failed: " if summary["status"] == "failed" else "Outcome: ") + outcome + ".")
    return "\n".join(lines)


def _review_words(review: dict) -> str:
    reasons = "; ".join(review["reasons"])
    if review["decision"] == "none":
        return reasons
    version = review["candidate"]["version"]
    if review["decision"] == "wait":
        return f"v{version} not decided yet, {reasons}"
    verb = "promoted" if review["decision"] == "promote" else "rolled back"
    return f"v{version} {verb if review['applied'] else 'would be ' + verb}, {reasons}"


def _drift_words(drift: dict) -> str:
    samples = f"{drift['n_current']} predictions of v{drift['version']}"
    if drift["score"] is None:
        return f"no predictions to compare ({samples})"
    found = {
        DriftReport.Status.DRIFT: f"drift found, severity {drift['severity']}",
        DriftReport.Status.OK: "no drift",
        DriftReport.Status.INSUFFICIENT_DATA: "too few predictions to judge",
    }.get(drift["status"], drift["status"])
    recorded = f", report {drift['report_id']}" if drift.get("report_id") else ", not recorded"
    return (
        f"{found} (score {drift['score']:.3f}, {drift['drifted_share']:.0%} of pixels "
        f"drifted, over {samples}{recorded})"
    )
