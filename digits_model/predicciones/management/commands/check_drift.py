"""Compare recent inputs of a model version with its training data; record the report.

Reads the version's training statistics from the artifact store, aggregates the window
(whole hours from their hourly summaries, the rest of the log in one streaming pass), and
stores the report (artifact store, then database). Read-only on everything else, so it is
safe to run from cron at any rate.

Exit codes: 0 it ran (whatever it found); 1 drift found and ``--fail-on-drift`` given;
2 it could not run (store unreachable, no statistics for the version, bad options), with
one line on stderr.
"""

from django.core.management.base import CommandError

from predicciones.management.base import (
    OperatorCommand,
    parse_since,
    positive_float,
    positive_fraction,
    positive_int,
)
from predicciones.models import DriftReport
from predicciones.options import drift_thresholds
from predicciones.services.drift import drift_report_create

EXIT_DRIFT_FOUND = 1
#: Rows of the "worst features" table.
WORST_FEATURES = 10


class Command(OperatorCommand):
    help = (
        "Check the inputs of a model version for drift against its training statistics "
        "(per-feature Wasserstein distance) and record the report."
    )

    def add_arguments(self, parser):
        parser.add_argument("--model", help="Model name (default: DIGITS_DEFAULT_MODEL).")
        parser.add_argument(
            "--model-version",
            type=positive_int,
            metavar="N",
            help="Version to check (default: the live one).",
        )
        window = parser.add_mutually_exclusive_group()
        window.add_argument(
            "--last",
            type=positive_int,
            metavar="N",
            help="The version's last N logged predictions (default: DIGITS_DRIFT_WINDOW).",
        )
        window.add_argument(
            "--since", metavar="ISO", help="Predictions logged since this ISO 8601 date/time."
        )
        parser.add_argument(
            "--until",
            metavar="ISO",
            help="Only predictions logged up to this ISO 8601 date/time (default: now).",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON document.")
        parser.add_argument(
            "--fail-on-drift",
            action="store_true",
            help="Exit 1 when the status is 'drift' (for cron and CI).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Compute and print, but record nothing."
        )
        thresholds = parser.add_argument_group("thresholds (default: DIGITS_DRIFT_* settings)")
        thresholds.add_argument(
            "--feature-threshold",
            type=positive_float,
            help="Normalised W1 from which a feature counts as drifted.",
        )
        thresholds.add_argument(
            "--warning-share",
            type=positive_fraction,
            help="Share of drifted features for 'warning'.",
        )
        thresholds.add_argument(
            "--critical-share",
            type=positive_fraction,
            help="Share of drifted features for 'critical'.",
        )
        thresholds.add_argument(
            "--min-samples",
            type=positive_int,
            help="Fewer live predictions give status 'insufficient_data'.",
        )

    def handle(self, *args, **options):
        thresholds = drift_thresholds(
            feature=options["feature_threshold"],
            warning_share=options["warning_share"],
            critical_share=options["critical_share"],
            min_samples=options["min_samples"],
        )
        since = parse_since(options["since"]) if options["since"] else None
        until = parse_since(options["until"], "--until") if options["until"] else None
        report = drift_report_create(
            name=options["model"],
            version=options["model_version"],
            last=options["last"],
            since=since,
            until=until,
            thresholds=thresholds,
            save=not options["dry_run"],
        )
        document = {"report_id": report.pk, **report.document}
        if options["json"]:
            self.write_json(document)
        else:
            self.stdout.write(render_table(document, style=self.style))
        if options["fail_on_drift"] and report.status == DriftReport.Status.DRIFT:
            raise CommandError(
                f"drift found: {report.severity}, {document['n_drifted']} of 64 features",
                returncode=EXIT_DRIFT_FOUND,
            )


def render_table(doc: dict, *, style=None) -> str:
    """The report as a readable summary, worst features first, then the 8x8 map."""
    status = doc["status"].upper()
    if style is not None:
        paints = {DriftReport.Status.OK: style.SUCCESS, DriftReport.Status.DRIFT: style.ERROR}
        status = paints.get(doc["status"], style.WARNING)(status)
    window = doc["window"]
    span = (
        f"last {window['last']} predictions"
        if window["kind"] == "last"
        else f"since {window['since']}"
    )
    if window.get("until"):
        span += f" until {window['until']}"
    if window["start"]:
        span += f", logged {window['start']} .. {window['end']}"
    t = doc["thresholds"]
    lines = [
        f"check_drift {doc['model']} v{doc['version']}: {status} (severity {doc['severity']})",
        f"  window      {span}",
        f"  samples     {doc['n_current']} live vs {doc['n_reference']} training"
        + (f" (minimum {t['min_samples']})" if doc["n_current"] < t["min_samples"] else ""),
    ]
    if doc["score"] is None:
        lines.append("  no logged predictions in the window: nothing to compare")
        return "\n".join([*lines, _stored_line(doc)])
    mix = doc["prediction_mix"]["total_variation"]
    conf = doc["confidence"]
    before = (
        f", {conf['reference_mean']:.3f} before (shift {conf['shift']:+.3f})"
        if conf["reference_mean"] is not None
        else " (no earlier window to compare)"
    )
    lines += [
        f"  score       {doc['score']:.3f} (mean normalised W1)",
        f"  drifted     {doc['n_drifted']} of 64 features ({doc['drifted_share']:.0%}); "
        f"feature threshold {t['feature']}, warning at {t['warning_share']:.0%}, "
        f"critical at {t['critical_share']:.0%}",
        f"  class mix   {mix:.3f} total variation from the training mix",
        f"  confidence  {conf['current_mean']:.3f} now{before}",
        "",
        f"Worst features (normalised = W1 / max(training std, {t['scale_floor']}))",
        "  feature  pixel      W1   scale  normalised  train mean  live mean",
    ]
    worst = sorted(doc["features"], key=lambda f: (-f["normalised"], f["feature"]))
    for f in worst[:WORST_FEATURES]:
        lines.append(
            f"  {f['feature']:>7}  ({f['row']},{f['col']})  {f['wasserstein']:>6.3f}  "
            f"{f['scale']:>6.2f}  {f['normalised']:>8.3f} {'*' if f['drifted'] else ' '}  "
            f"{f['reference_mean']:>10.2f}  {f['current_mean']:>9.2f}"
        )
    lines += [
        "",
        "Normalised W1 per pixel (* drifted)",
        "      " + "".join(f"{c:>7}" for c in range(8)),
    ]
    for r in range(8):
        cells = doc["features"][r * 8 : r * 8 + 8]
        lines.append(
            f"  {r:>2}  "
            + "".join(f"{c['normalised']:>6.2f}{'*' if c['drifted'] else ' '}" for c in cells)
        )
    return "\n".join([*lines, "", _stored_line(doc)])


def _stored_line(doc: dict) -> str:
    if doc.get("report_id") is None:
        return "dry run: report not recorded"
    return f"report {doc['report_id']} recorded; JSON at {doc['store_key']}"
