"""The prediction log's maintenance: ``log_maintain`` runs its three steps, in this order,
each resumable and idempotent, one run at a time per database.

1. **summarise** (``summaries``): every closed hour (over, plus ``DIGITS_LOG_GRACE_SECONDS``)
   of every version gets a summary row and its JSON in the store; hours in which labels
   arrived get their label counts recounted.
2. **capture** (``capture``): each summarised hour's rows go to the store as checked gzip
   JSON Lines, and the hour's summary becomes that of exactly the rows captured; labels are
   captured per labelling hour.
3. **retention** (``retention``): in hours older than ``DIGITS_LOG_RETENTION_DAYS``,
   unlabelled rows are deleted by the query ids their checked capture lists.

Besides: :func:`log_recapture` rebuilds a lost capture from the rows still in the database,
and :func:`log_reindex` rebuilds the log's indexes on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.db import DatabaseError, connection
from django.utils import timezone

from .. import storage
from ..exceptions import MaintenanceError
from ..models import CapturePart, LabelHour, Prediction, PredictionHour
from ..options import LifecycleSettings, lifecycle_settings
from .capture import capture_labels, recapture_hour, step_capture
from .layout import HOUR, hour_floor
from .retention import step_retention
from .summaries import step_summarise

logger = logging.getLogger(__name__)


# --- The run -------------------------------------------------------------------------------
@dataclass
class MaintainReport:
    """What one ``log_maintain`` run did (or, dry, would do), step by step."""

    now: dt.datetime
    settings: LifecycleSettings
    dry_run: bool
    summarise: dict = field(default_factory=dict)
    capture: dict = field(default_factory=dict)
    retention: dict = field(default_factory=dict)
    reindex: dict | None = None
    failed_step: str | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        document = {
            "status": "failed" if self.failed_step else "ok",
            "dry_run": self.dry_run,
            "now": self.now.isoformat(),
            "retention_days": self.settings.retention_days,
            "grace_seconds": int(self.settings.grace.total_seconds()),
            "summarise": self.summarise,
            "capture": self.capture,
            "retention": self.retention,
        }
        if self.reindex is not None:
            document["reindex"] = self.reindex
        if self.failed_step:
            document.update(step=self.failed_step, error=self.error)
        return document


def log_maintain(
    *,
    now: dt.datetime | None = None,
    config: LifecycleSettings | None = None,
    dry_run: bool = False,
    reindex: bool = False,
) -> MaintainReport:
    """Summarise, capture, then apply retention (see the module docstring); with
    ``reindex``, then rebuild the log's indexes (:func:`log_reindex`).

    A step that fails (store or database unreachable) stops the run: the report says what
    was done and which step failed (``failed_step``, ``error``); everything recorded until
    then is whole, and the next run carries on from there.
    """
    now = timezone.now() if now is None else now
    config = config or lifecycle_settings()
    report = MaintainReport(now=now, settings=config, dry_run=dry_run)
    closed_before = hour_floor(now - config.grace) - HOUR  # the last closed hour starts here
    cutoff = now - dt.timedelta(days=config.retention_days)
    lock = contextlib.nullcontext() if dry_run else maintenance_lock()
    with lock, tempfile.TemporaryDirectory(prefix="digits-maintain-") as scratch_dir:
        scratch = Path(scratch_dir)
        steps = [
            ("summarise", lambda: step_summarise(report, closed_before, config, dry_run)),
            ("capture", lambda: step_capture(report, closed_before, config, dry_run, scratch)),
            ("retention", lambda: step_retention(report, cutoff, config, dry_run, scratch)),
        ]
        if reindex:
            report.reindex = {}
            steps.append(("reindex", lambda: report.reindex.update(log_reindex(dry_run=dry_run))))
        for name, step in steps:
            if not _step_run(report, name, step):
                break
    return report


def _step_run(report: MaintainReport, name: str, step) -> bool:
    """Run one step, timing it into its part of the report; False (the report says why)
    when it failed and the run must stop."""
    started = time.monotonic()
    try:
        step()
    except (storage.StoreError, MaintenanceError, DatabaseError) as exc:
        report.failed_step, report.error = name, str(exc).splitlines()[0]
        logger.warning("maintain: the %s step failed: %s", name, report.error)
        return False
    finally:
        getattr(report, name)["seconds"] = round(time.monotonic() - started, 3)
    return True


@contextlib.contextmanager
def maintenance_lock():
    """One maintain at a time per database: a PostgreSQL advisory lock, or a lock file beside
    the SQLite database."""
    if connection.vendor == "postgresql":
        key = int.from_bytes(hashlib.sha256(b"digits-maintain").digest()[:8], "big", signed=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            if not cursor.fetchone()[0]:
                raise MaintenanceError("another maintain is running on this database")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        return
    if connection.is_in_memory_db():  # private to this process: nobody else can run on it
        yield
        return
    path = Path(f"{connection.settings_dict['NAME']}.maintain.lock")
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MaintenanceError("another maintain is running on this database") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --- Rebuilding a lost capture --------------------------------------------------------------
def _capture_present(store, row: PredictionHour) -> bool:
    """Whether the hour's manifest and every recorded part are in the store (no download)."""
    version = row.model_version
    keys = [storage.capture_manifest_key(version.model.name, version.version, row.hour)]
    keys += CapturePart.objects.filter(
        kind=CapturePart.Kind.PREDICTIONS, model_version=version, hour=row.hour
    ).values_list("key", flat=True)
    return all(store.exists(key) for key in keys)


def log_recapture(*, hour: dt.datetime | None, dry_run: bool = False) -> dict:
    """Rebuild lost captures from the rows still in the database.

    ``hour``: every captured version-hour starting then, and that hour's labels; None: every
    captured hour whose manifest or a part is missing from the store (each checked with a
    HEAD request). An hour not yet pruned by retention still holds all its rows: its capture
    is written again as part 0 (uploaded, read back, checked), its parts' records replaced,
    and its summary replaced by the one of exactly the rows captured. A pruned hour kept only
    its labelled rows, so it cannot be rebuilt: it is listed under ``lost`` (its summary
    stays; ``export_predictions --from-capture`` cannot read it back). Nothing is deleted
    from the database.
    """
    report = {"dry_run": dry_run, "hours": [], "lost": [], "label_hours": [], "rows": 0}
    with contextlib.ExitStack() as stack:
        if not dry_run:
            stack.enter_context(maintenance_lock())
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="digits-recap-")))
        store = storage.get_store()
        _recapture_predictions(store, report, hour, dry_run, scratch)
        _recapture_labels(store, report, hour, dry_run, scratch)
    return report


def _recapture_predictions(store, report: dict, hour, dry_run: bool, scratch: Path) -> None:
    """Recapture the version-hours of ``hour`` (None: those whose capture is missing)."""
    rows = PredictionHour.objects.filter(captured_rows__isnull=False).select_related(
        "model_version__model"
    )
    if hour is not None:
        rows = rows.filter(hour=hour_floor(hour))
    for row in rows.order_by("hour", "model_version_id"):
        if hour is None and _capture_present(store, row):
            continue
        name = f"{row.model_version} {row.hour.isoformat()}"
        if row.pruned_at is not None:
            report["lost"].append(name)
            logger.warning("%s: pruned by retention, its capture cannot be rebuilt", name)
            continue
        report["hours"].append(name)
        if not dry_run:
            report["rows"] += recapture_hour(store, row, scratch)


def _recapture_labels(store, report: dict, hour, dry_run: bool, scratch: Path) -> None:
    """Capture again the labels of ``hour`` (None: every labelling hour whose manifest is
    missing)."""
    label_hours = LabelHour.objects.filter(captured_at__isnull=False)
    if hour is not None:
        label_hours = label_hours.filter(hour=hour_floor(hour))
    for label_hour in label_hours.order_by("hour"):
        if hour is None and store.exists(storage.label_manifest_key(label_hour.hour)):
            continue
        report["label_hours"].append(label_hour.hour.isoformat())
        if not dry_run:
            capture_labels(store, label_hour, scratch)


# --- Rebuilding the log's indexes (PostgreSQL) -------------------------------------------------
def log_reindex(*, dry_run: bool = False) -> dict:
    """Rebuild the prediction log's indexes on PostgreSQL, without blocking writes.

    Retention empties old hours except for their labelled rows, which stay. In an index
    ordered by time, those few rows keep every old leaf page alive, and PostgreSQL only
    frees empty pages: such indexes grow with every row ever logged (measured: about 27
    bytes per row per index), not with the rows kept. ``REINDEX INDEX CONCURRENTLY`` builds
    each index anew beside the old one while inserts go on, then swaps them. SQLite merges
    underfull pages on delete and needs nothing.
    """
    if connection.vendor != "postgresql":
        return {"indexes": [], "note": f"not needed on {connection.vendor}"}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index "
            "WHERE indrelid = %s::regclass ORDER BY 1",
            [Prediction._meta.db_table],
        )
        before = dict(cursor.fetchall())
    if dry_run:
        return {"indexes": sorted(before), "bytes_before": sum(before.values())}
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for name in sorted(before):
            # Names come from the catalogue, quoted; REINDEX takes no parameters.
            cursor.execute(f"REINDEX INDEX CONCURRENTLY {quote(name)}")
        cursor.execute("SELECT pg_indexes_size(%s::regclass)", [Prediction._meta.db_table])
        after = cursor.fetchone()[0]
    logger.info("reindexed %d indexes: %d -> %d bytes", len(before), sum(before.values()), after)
    return {
        "indexes": sorted(before),
        "bytes_before": sum(before.values()),
        "bytes_after": after,
    }
