"""Capturing the log to the artifact store: the second step of ``maintain``, and the rebuild of
a lost capture.

Each summarised hour's rows, every logged field, are written as one gzip JSON Lines object
under ``capture/predictions/model=/version=/date=/hour=/``, read back and checked, described
by a ``manifest.json``, and only then recorded; the hour's summary is replaced by the one
computed from the very rows captured (one statement, one snapshot), so the two always cover
the same rows. A row that reaches the log after its hour was captured (a write that stalled
beyond the grace period) is found by comparing the hour's row count with what was captured,
and captured as a further part of the hour. Labels are captured per labelling hour under
``capture/labels/``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import operator
from pathlib import Path

import numpy as np
from django.db import transaction
from django.utils import timezone

from .. import storage
from ..exceptions import MaintenanceError
from ..ml import summary as log_summary
from ..models import CapturePart, LabelHour, ModelVersion, Prediction, PredictionHour
from .capture_files import (
    PartWriter,
    WrittenPart,
    captured_ids,
    label_line,
    label_manifest,
    manifest,
    part_path,
    prediction_line,
    upload_checked,
)
from .layout import CHUNK_ROWS, HOUR, aware, chunks, hour_row_chunks, hour_rows
from .summaries import hour_summary_read, summary_add, summary_fields, summary_store

logger = logging.getLogger(__name__)

#: Captured hours whose row count is compared with the log again on every run, in case a
#: write stalled beyond the grace period (older hours are compared before retention).
LATE_ROW_RECHECK = dt.timedelta(hours=6)
#: A row of :data:`~.layout.ROW_COLUMNS` as :data:`~.summaries.SUMMARY_COLUMNS`.
_summary_columns = operator.itemgetter(8, 2, 3, 4, 6)


# --- Writing an hour's part -----------------------------------------------------------------
def write_hour_part(
    *,
    version: ModelVersion,
    hour: dt.datetime,
    part: int,
    scratch: Path,
    exclude: np.ndarray | None = None,
) -> WrittenPart:
    """Write the hour's rows (all, or those whose id is not in ``exclude``) to a local part
    file (:func:`~.capture_files.part_path`), summarising exactly the rows written."""
    model_json = json.dumps(version.model.name)
    writer = PartWriter(part_path(scratch, part))
    total = log_summary.LogSummary()
    for rows in hour_row_chunks(version.pk, hour):
        if exclude is not None and len(exclude):
            ids = np.array([r[0].encode() for r in rows], dtype="S36")
            at = np.minimum(np.searchsorted(exclude, ids), len(exclude) - 1)
            rows = [r for r, seen in zip(rows, exclude[at] == ids, strict=True) if not seen]
            if not rows:
                continue
        first, last = aware(rows[0][1]), aware(rows[-1][1])
        writer.write([prediction_line(model_json, version.version, r) for r in rows], first, last)
        summary_add(total, [_summary_columns(r) for r in rows], first=first, last=last)
    sha256 = writer.close()
    return WrittenPart(
        key=storage.capture_part_key(version.model.name, version.version, hour, part),
        part=part,
        rows=writer.rows,
        bytes=writer.bytes,
        sha256=sha256,
        first=writer.first,
        last=writer.last,
        summary=total,
    )


def _first_part(store, row: PredictionHour, scratch: Path) -> WrittenPart:
    """Write every row of the hour as part 0, upload and check it, then its manifest."""
    written = write_hour_part(version=row.model_version, hour=row.hour, part=0, scratch=scratch)
    _upload_part(store, row.model_version, row.hour, written, [], scratch)
    return written


def _locked(row: PredictionHour) -> PredictionHour:
    """The hour's row, locked until the transaction ends."""
    return PredictionHour.objects.select_for_update().get(pk=row.pk)


def _upload_part(store, version, hour, written: WrittenPart, earlier: list, scratch) -> None:
    """Upload a written part (read back and checked), then the manifest of every part."""
    upload_checked(
        store, written.key, part_path(scratch, written.part), written.sha256, written.rows, scratch
    )
    storage.put_json(
        store,
        storage.capture_manifest_key(version.model.name, version.version, hour),
        manifest(version, hour, [*earlier, written]),
    )


def _part_record(version: ModelVersion, hour: dt.datetime, written: WrittenPart, now) -> None:
    CapturePart.objects.create(
        kind=CapturePart.Kind.PREDICTIONS,
        model_version=version,
        hour=hour,
        captured_at=now,
        **written.columns(),
    )


def _hour_parts(version: ModelVersion, hour: dt.datetime):
    return CapturePart.objects.filter(
        kind=CapturePart.Kind.PREDICTIONS, model_version=version, hour=hour
    )


def _summary_replace(locked: PredictionHour, total: log_summary.LogSummary) -> None:
    for name, value in summary_fields(total).items():
        setattr(locked, name, value)


def _hour_save(locked: PredictionHour, now) -> None:
    """Save the hour's row, its summary changed (so no longer the one in the store)."""
    locked.summarised_at = now
    locked.summary_stored = False
    locked.save()


def _hour_stored(store, locked: PredictionHour, version, scratch, part: int) -> None:
    """Once the hour's row is committed: drop the local part, store the new summary."""
    part_path(scratch, part).unlink()
    locked.model_version = version
    summary_store(store, locked)


# --- Step 2 of maintain: capture -------------------------------------------------------------
def step_capture(report, closed_before: dt.datetime, config, dry_run: bool, scratch: Path):
    """Capture every summarised hour not captured yet, the late rows of recent hours, and
    every counted labelling hour."""
    info = report.capture = {
        "hours": 0,
        "rows": 0,
        "bytes": 0,
        "late_rows": 0,
        "label_hours": 0,
        "labels": 0,
        "more": False,
    }
    pending = PredictionHour.objects.filter(captured_rows__isnull=True).select_related(
        "model_version__model"
    )
    label_hours = LabelHour.objects.filter(counted_at__isnull=False, captured_at__isnull=True)
    if dry_run:
        info["hours"] = pending.count()
        info["label_hours"] = label_hours.count()
        return
    store = storage.get_store()
    for row in pending.order_by("hour", "model_version_id"):
        if config.reached(info["hours"]):
            info["more"] = True
            break
        written = capture_hour(store, row, scratch)
        info["hours"] += 1
        info["rows"] += written.rows
        info["bytes"] += written.bytes
    recheck = PredictionHour.objects.filter(
        captured_rows__isnull=False,
        pruned_at__isnull=True,
        hour__gte=closed_before - LATE_ROW_RECHECK,
    ).select_related("model_version__model")
    for row in recheck:
        info["late_rows"] += fold_late_rows(store, row, scratch)
    for label_hour in label_hours.order_by("hour"):
        if config.reached(info["label_hours"]):
            info["more"] = True
            break
        info["labels"] += capture_labels(store, label_hour, scratch)
        info["label_hours"] += 1


def capture_hour(store, row: PredictionHour, scratch: Path) -> WrittenPart:
    """Capture an hour: write, upload and check part 0, write the manifest, then record the
    part and the summary of exactly those rows in one transaction."""
    version, hour = row.model_version, row.hour
    written = _first_part(store, row, scratch)
    now = timezone.now()
    with transaction.atomic():
        locked = _locked(row)
        if locked.captured_rows is not None:
            raise MaintenanceError(f"{version} hour {hour.isoformat()} was captured meanwhile")
        _part_record(version, hour, written, now)
        if written.summary.n:
            _summary_replace(locked, written.summary)
        else:  # every row went (deleted by hand?): keep the summary, capture nothing more
            logger.warning("%s hour %s had no rows left to capture", version, hour.isoformat())
        locked.captured_rows = written.rows
        locked.captured_at = now
        _hour_save(locked, now)
    _hour_stored(store, locked, version, scratch, 0)
    logger.info(
        "captured %s hour %s: %d rows, %d bytes",
        version,
        hour.isoformat(),
        written.rows,
        written.bytes,
    )
    return written


def late_rows(row: PredictionHour) -> int:
    """Rows in the log for this hour beyond those captured and not deleted since."""
    present = hour_rows(row.model_version_id, row.hour).count()
    return present - ((row.captured_rows or 0) - row.deleted_rows)


def fold_late_rows(store, row: PredictionHour, scratch: Path) -> int:
    """Capture rows that reached an already captured hour as its next part, and add them to
    the hour's summary. Returns how many there were."""
    if late_rows(row) <= 0:
        return 0
    version, hour = row.model_version, row.hour
    parts = list(_hour_parts(version, hour).order_by("part"))
    written = write_hour_part(
        version=version,
        hour=hour,
        part=len(parts),
        scratch=scratch,
        exclude=captured_ids(parts, store, scratch),
    )
    if written.rows == 0:
        part_path(scratch, written.part).unlink()
        return 0
    _upload_part(store, version, hour, written, [WrittenPart.of(p) for p in parts], scratch)
    now = timezone.now()
    with transaction.atomic():
        locked = _locked(row)
        _part_record(version, hour, written, now)
        _summary_replace(locked, hour_summary_read(locked).add(written.summary))
        locked.captured_rows += written.rows
        _hour_save(locked, now)
    _hour_stored(store, locked, version, scratch, written.part)
    logger.warning(
        "%s hour %s: %d rows reached the log after it was captured; captured as part %d",
        version,
        hour.isoformat(),
        written.rows,
        written.part,
    )
    return written.rows


def recapture_hour(store, row: PredictionHour, scratch: Path) -> int:
    """Write the hour's capture again from its rows in the database, as part 0, replacing
    its part records (and any later part's object); returns the rows."""
    version, hour = row.model_version, row.hour
    written = _first_part(store, row, scratch)
    now = timezone.now()
    with transaction.atomic():
        locked = _locked(row)
        stale = _hour_parts(version, hour)
        for part in stale.exclude(part=0):  # later parts' objects, if any survived
            with contextlib.suppress(storage.StoreError):
                store.delete(part.key)
        stale.delete()
        _part_record(version, hour, written, now)
        if locked.deleted_rows == 0 and written.summary.n:
            _summary_replace(locked, written.summary)
        elif locked.deleted_rows:
            # Rows retention deleted before the capture was lost are gone from both: the
            # summary keeps counting them, the capture holds the rest.
            logger.warning(
                "%s hour %s: %d rows deleted before the capture was lost are not in it",
                version,
                hour.isoformat(),
                locked.deleted_rows,
            )
        locked.captured_rows = written.rows
        locked.deleted_rows = 0
        locked.captured_at = now
        _hour_save(locked, now)
    _hour_stored(store, locked, version, scratch, 0)
    logger.warning("recaptured %s hour %s: %d rows", version, hour.isoformat(), written.rows)
    return written.rows


# --- Labels -----------------------------------------------------------------------------------
def capture_labels(store, label_hour: LabelHour, scratch: Path) -> int:
    """Capture the labels given in one hour (one part and its manifest); how many."""
    hour = label_hour.hour
    rows = (
        Prediction.objects.filter(labelled_at__gte=hour, labelled_at__lt=hour + HOUR)
        .order_by("labelled_at", "query_id")
        .values_list(
            "query_id",
            "created_at",
            "model_version__model__name",
            "model_version__version",
            "label",
            "labelled_at",
        )
        .iterator(chunk_size=CHUNK_ROWS)
    )
    path = scratch / "labels.jsonl.gz"
    writer = PartWriter(path)
    for block in chunks(rows, CHUNK_ROWS):
        writer.write([label_line(*row) for row in block], block[0][5], block[-1][5])
    sha256 = writer.close()
    key = storage.label_part_key(hour)
    upload_checked(store, key, path, sha256, writer.rows, scratch)
    storage.put_json(
        store, storage.label_manifest_key(hour), label_manifest(hour, key, writer, sha256)
    )
    now = timezone.now()
    with transaction.atomic():
        CapturePart.objects.update_or_create(
            key=key,
            defaults={
                "kind": CapturePart.Kind.LABELS,
                "model_version": None,
                "hour": hour,
                "part": 0,
                "rows": writer.rows,
                "bytes": writer.bytes,
                "sha256": sha256,
                "first_at": writer.first,
                "last_at": writer.last,
                "captured_at": now,
            },
        )
        LabelHour.objects.filter(pk=label_hour.pk).update(captured_at=now)
    path.unlink()
    return writer.rows
