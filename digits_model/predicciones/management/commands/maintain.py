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

from predicciones.management.base import (
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
        report = log_maintain(config=config, dry_run=opts["dry_run"], reindex=opts["reindex"])
        self.write_account(report.to_dict(), render_report, as_json=opts["json"])

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
    steps = {
        "summarise": lambda s: [
            f"Summarise: {s['hours']} closed hours {would}summarised",
            s.get("rows") and f" ({s['rows']} rows)",
            f", {s['label_hours']} hours of labels {would}counted",
        ],
        "capture": lambda c: [
            f"Capture: {c['hours']} hours {would}captured",
            c.get("rows") and f" ({c['rows']} rows, {c['bytes']} bytes)",
            f", {c['label_hours']} hours of labels",
            c.get("late_rows") and f", {c['late_rows']} late rows added",
        ],
        "retention": lambda r: [
            f"Retention (rows before {r['cutoff']}): {r['hours']} hours, "
            f"{r['rows_deleted']} unlabelled rows {would}deleted",
            r.get("labelled_rows_kept") and f", {r['labelled_rows_kept']} labelled rows kept",
            r.get("hours_waiting_for_capture")
            and f", {r['hours_waiting_for_capture']} hours waiting for their capture",
        ],
    }
    lines = []
    for name, words in steps.items():
        info = report.get(name) or {}
        if info:
            parts = [*words(info), info.get("more") and "; more to do next run", "."]
            lines.append("".join(part for part in parts if part))
    if report.get("reindex"):
        lines.append(_reindex_sentence(report["reindex"]))
    if report["status"] == "failed":
        lines.append(f"Failed at {report['step']}: {report['error']}.")
    elif report["dry_run"]:
        lines.append("Dry run: nothing recorded, stored or deleted.")
    return "\n".join(lines)


def _reindex_sentence(reindex: dict) -> str:
    if "bytes_after" in reindex:
        return (
            f"Reindex: {len(reindex['indexes'])} indexes rebuilt, {reindex['bytes_before']} -> "
            f"{reindex['bytes_after']} bytes."
        )
    if reindex.get("note"):
        return f"Reindex: {reindex['note']}."
    return f"Reindex: {len(reindex['indexes'])} indexes would be rebuilt."
