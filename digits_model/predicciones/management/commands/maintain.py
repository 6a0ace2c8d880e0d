"""The prediction log's lifecycle, for cron: summarise, capture, apply retention, in that order.

Summarises every closed hour (over by ``DIGITS_LOG_GRACE_SECONDS``), captures its rows to
the artifact store as gzip JSON Lines (read back and checked before being recorded), then
deletes unlabelled rows older than ``DIGITS_LOG_RETENTION_DAYS`` whose hour's capture
checks out again. Safe to rerun at any time: every step starts from what is recorded, a
crash leaves nothing half-done, and nothing is deleted while the store is unreachable. One
maintain at a time per database (a second one exits 2).

Exit codes: 0 done; 2 could not run or a step failed (the account of what was done is still
printed, then one line on stderr).
"""

from django.core.management.base import CommandError

from predicciones.management.base import (
    EXIT_COULD_NOT_RUN,
    OperatorCommand,
    int_between,
    non_negative_int,
    parse_since,
    positive_int,
)
from predicciones.options import MAX_DELETE_BATCH, lifecycle_settings
from predicciones.prediction_log.maintenance import log_maintain, log_recapture


class Command(OperatorCommand):
    help = (
        "Summarise closed hours of the prediction log, capture them to the artifact store, "
        "and delete captured unlabelled rows past the retention period."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--retention-days",
            type=positive_int,
            metavar="N",
            help="Keep unlabelled rows this many days (default: DIGITS_LOG_RETENTION_DAYS).",
        )
        parser.add_argument(
            "--grace-seconds",
            type=non_negative_int,
            metavar="S",
            help="An hour is closed once over by this long (default: DIGITS_LOG_GRACE_SECONDS).",
        )
        parser.add_argument(
            "--max-hours",
            type=positive_int,
            metavar="N",
            help="At most N hours per step in this run (the next run goes on).",
        )
        parser.add_argument(
            "--batch-rows",
            type=int_between(1, MAX_DELETE_BATCH),
            metavar="N",
            help="Rows deleted per transaction (default 5000).",
        )
        parser.add_argument(
            "--reindex",
            action="store_true",
            help="Then rebuild the log's indexes without blocking writes (PostgreSQL; weekly).",
        )
        parser.add_argument(
            "--recapture",
            metavar="HOUR",
            help="Instead of a pass: rebuild the lost capture of HOUR (UTC, e.g. "
            "2026-11-30T13) from the rows still in the database, or of every hour whose "
            "capture is missing from the store with 'missing'.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would be done; write nothing."
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON document.")

    def handle(self, *args, **opts):
        if opts["recapture"]:
            return self.recapture(opts["recapture"], dry_run=opts["dry_run"], json=opts["json"])
        config = lifecycle_settings(
            retention_days=opts["retention_days"],
            grace_seconds=opts["grace_seconds"],
            max_hours=opts["max_hours"],
            delete_batch=opts["batch_rows"],
        )
        report = log_maintain(
            config=config, dry_run=opts["dry_run"], reindex=opts["reindex"]
        ).to_dict()
        if opts["json"]:
            self.write_json(report)
        else:
            self.stdout.write(render_report(report))
        if report["status"] == "failed":
            raise CommandError(
                f"the {report['step']} step failed: {report['error']}",
                returncode=EXIT_COULD_NOT_RUN,
            )

    def recapture(self, text: str, *, dry_run: bool, json: bool) -> None:
        hour = None if text == "missing" else parse_since(text, "--recapture")
        report = log_recapture(hour=hour, dry_run=dry_run)
        if json:
            self.write_json(report)
        else:
            would = "would be " if dry_run else ""
            self.stdout.write(
                f"Recapture: {len(report['hours'])} hours {would}captured again from the "
                f"database ({report['rows']} rows), {len(report['label_hours'])} hours of "
                f"labels {would}captured again."
            )
        if report["lost"]:
            # Cron mails stderr: say plainly what cannot come back.
            self.stderr.write(
                f"warning: {len(report['lost'])} hours were pruned by retention before their "
                f"capture was lost and cannot be rebuilt: {', '.join(report['lost'][:5])}"
                + (" ..." if len(report["lost"]) > 5 else "")
            )


def render_report(report: dict) -> str:
    """The run in sentences (``--json`` has every number)."""
    would = "would be " if report["dry_run"] else ""
    lines = []
    s = report.get("summarise") or {}
    if s:
        lines.append(
            f"Summarise: {s['hours']} closed hours {would}summarised"
            + (f" ({s['rows']} rows)" if s.get("rows") else "")
            + f", {s['label_hours']} hours of labels {would}counted"
            + ("; more to do next run" if s.get("more") else "")
            + "."
        )
    c = report.get("capture") or {}
    if c:
        lines.append(
            f"Capture: {c['hours']} hours {would}captured"
            + (f" ({c['rows']} rows, {c['bytes']} bytes)" if c.get("rows") else "")
            + f", {c['label_hours']} hours of labels"
            + (f", {c['late_rows']} late rows added" if c.get("late_rows") else "")
            + ("; more to do next run" if c.get("more") else "")
            + "."
        )
    r = report.get("retention") or {}
    if r:
        lines.append(
            f"Retention (rows before {r['cutoff']}): {r['hours']} hours, {r['rows_deleted']} "
            f"unlabelled rows {would or ''}deleted"
            + (
                f", {r['labelled_rows_kept']} labelled rows kept"
                if r.get("labelled_rows_kept")
                else ""
            )
            + (
                f", {r['hours_waiting_for_capture']} hours waiting for their capture"
                if r.get("hours_waiting_for_capture")
                else ""
            )
            + ("; more to do next run" if r.get("more") else "")
            + "."
        )
    x = report.get("reindex")
    if x:
        if "bytes_after" in x:
            lines.append(
                f"Reindex: {len(x['indexes'])} indexes rebuilt, {x['bytes_before']} -> "
                f"{x['bytes_after']} bytes."
            )
        elif x.get("note"):
            lines.append(f"Reindex: {x['note']}.")
        else:
            lines.append(f"Reindex: {len(x['indexes'])} indexes would be rebuilt.")
    if report["status"] == "failed":
        lines.append(f"Failed at {report['step']}: {report['error']}.")
    elif report["dry_run"]:
        lines.append("Dry run: nothing recorded, stored or deleted.")
    return "\n".join(lines)
