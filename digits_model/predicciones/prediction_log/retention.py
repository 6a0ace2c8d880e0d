"""Retention: the third step of ``maintain``.

In hours older than ``DIGITS_LOG_RETENTION_DAYS``, unlabelled rows are deleted, in batches,
by the query ids listed in the hour's capture, after every part of it has been downloaded
and checked again. Each batch and the hour's ``deleted_rows`` move in one transaction, so a
crash leaves a state the next run finishes from. Labelled rows stay: they are what
retraining reads.
"""

from __future__ import annotations

import gzip
import logging
import uuid
from pathlib import Path

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .. import storage
from ..exceptions import CaptureMismatchError
from ..models import CapturePart, PredictionHour
from .capture import fold_late_rows
from .capture_files import ID_SLICE, part_check, recapture_hint
from .layout import HOUR, chunks, hour_rows

logger = logging.getLogger(__name__)


def step_retention(report, cutoff, config, dry_run: bool, scratch: Path) -> None:
    """Prune every captured hour that ended before ``cutoff`` and is not pruned yet."""
    due = PredictionHour.objects.filter(pruned_at__isnull=True, hour__lte=cutoff - HOUR)
    info = report.retention = {
        "cutoff": cutoff.isoformat(),
        "hours": 0,
        "rows_deleted": 0,
        "labelled_rows_kept": 0,
        "late_rows": 0,
        "hours_waiting_for_capture": due.filter(captured_rows__isnull=True).count(),
        "more": False,
    }
    ready = due.filter(captured_rows__isnull=False).select_related("model_version__model")
    store = None if dry_run else storage.get_store()
    for row in ready.order_by("hour", "model_version_id"):
        if config.reached(info["hours"]):
            info["more"] = True
            break
        info["hours"] += 1
        if dry_run:
            info["rows_deleted"] += (
                hour_rows(row.model_version_id, row.hour).filter(label__isnull=True).count()
            )
            continue
        deleted, kept, late = prune_hour(store, row, config, scratch)
        info["rows_deleted"] += deleted
        info["labelled_rows_kept"] += kept
        info["late_rows"] += late


def prune_hour(store, row: PredictionHour, config, scratch: Path) -> tuple[int, int, int]:
    """Delete the hour's unlabelled rows that its checked capture holds; mark it pruned.

    Every part is downloaded and checked (present, sha256, row count) before the first
    delete; the ids to delete are read from those very files. Returns the rows deleted,
    the rows kept (labelled) and the late rows captured first.
    """
    late = fold_late_rows(store, row, scratch)
    row.refresh_from_db()
    files = _checked_parts(store, row, scratch)
    deleted = sum(_delete_captured(row, path, config.delete_batch) for path in files)
    version, hour = row.model_version, row.hour
    kept = hour_rows(version.pk, hour).count()
    PredictionHour.objects.filter(pk=row.pk).update(pruned_at=timezone.now())
    logger.info(
        "retention: %s hour %s: %d rows deleted, %d kept (labelled)",
        version,
        hour.isoformat(),
        deleted,
        kept,
    )
    return deleted, kept, late


def _checked_parts(store, row: PredictionHour, scratch: Path) -> list[Path]:
    """Every part of the hour's capture, downloaded and checked, in order: the parts add up
    to the rows recorded, the manifest lists exactly them, each has its digest and rows."""
    version, hour = row.model_version, row.hour
    parts = list(
        CapturePart.objects.filter(
            kind=CapturePart.Kind.PREDICTIONS, model_version=version, hour=hour
        ).order_by("part")
    )
    if sum(p.rows for p in parts) != row.captured_rows:
        raise CaptureMismatchError(
            f"{version} hour {hour.isoformat()}: its capture parts do not add up to the "
            f"{row.captured_rows} rows recorded"
        )
    manifest_key = storage.capture_manifest_key(version.model.name, version.version, hour)
    try:
        manifest = storage.get_json(store, manifest_key)
    except storage.ObjectMissingError as exc:
        raise CaptureMismatchError(
            f"{manifest_key} is missing from {store.describe()}; {recapture_hint(hour)}"
        ) from exc
    if [(p["key"], p["rows"], p["sha256"]) for p in manifest.get("parts", [])] != [
        (p.key, p.rows, p.sha256) for p in parts
    ]:
        raise CaptureMismatchError(f"{manifest_key} does not list the recorded parts")
    files = []
    for part in parts:
        path = scratch / f"prune-{part.part:04d}.jsonl.gz"
        part_check(store, part, path)
        files.append(path)
    return files


def _delete_captured(row: PredictionHour, path: Path, batch: int) -> int:
    """Delete the unlabelled rows whose ids a checked part lists, ``batch`` per transaction
    (each with the hour's ``deleted_rows``); how many went. The file is removed after."""
    deleted = 0
    with gzip.open(path, "rb") as fh:
        for lines in chunks(fh, batch):
            ids = [uuid.UUID(line[ID_SLICE].decode()) for line in lines]
            with transaction.atomic():
                count, _ = (
                    hour_rows(row.model_version_id, row.hour)
                    .filter(query_id__in=ids, label__isnull=True)
                    .delete()
                )
                if count:
                    PredictionHour.objects.filter(pk=row.pk).update(
                        deleted_rows=F("deleted_rows") + count
                    )
            deleted += count
    path.unlink()
    return deleted
