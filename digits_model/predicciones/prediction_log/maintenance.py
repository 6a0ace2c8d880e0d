"""The prediction log's lifecycle: hourly summaries, capture to the artifact store, retention.

``log_maintain`` runs three steps, in this order, each resumable and idempotent:

1. **summarise**: every closed hour (over, plus ``DIGITS_LOG_GRACE_SECONDS``) of every
   version gets a :class:`~predicciones.models.PredictionHour` row (histograms, counts,
   exact confidence sum, latency buckets, labels; ``ml.summary``) and its JSON in the store;
   hours in which labels arrived get their label counts recounted.
2. **capture**: each summarised hour's rows, every logged field, are written as one gzip
   JSON Lines object under ``capture/predictions/model=/version=/date=/hour=/``, read back
   and checked (sha256, row count), described by a ``manifest.json``, and only then
   recorded; the summary is replaced by the one computed from the very rows captured (one
   statement, one snapshot), so the two always cover the same rows. Labels are captured per
   labelling hour under ``capture/labels/``.
3. **retention**: in hours older than ``DIGITS_LOG_RETENTION_DAYS``, unlabelled rows are
   deleted, in batches, by the query ids listed in the hour's capture, after every part of
   it has been downloaded and checked again. Each batch and the hour's ``deleted_rows``
   move in one transaction, so a crash leaves a state the next run finishes from.

A row that reaches the log after its hour was captured (a write that stalled beyond the
grace period) is found by comparing the hour's row count with what was captured; it is
captured as a further part of the hour and added to the hour's summary.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import gzip
import hashlib
import json
import logging
import os
import tempfile
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, F, Max, Min, Q
from django.utils import timezone

from .. import storage
from ..exceptions import CaptureMismatchError, MaintenanceError
from ..ml import summary as log_summary
from ..models import CapturePart, LabelHour, ModelVersion, Prediction, PredictionHour
from ..selectors import HOUR, hour_floor, hour_summary_read

logger = logging.getLogger(__name__)

#: Rows fetched per round trip while summarising or capturing an hour.
CHUNK_ROWS = 10_000
#: zlib level for the capture: 3 packs the log about 5:1, at nearly four times the speed
#: of gzip's default 6 (which saves another 15 % of the bytes).
GZIP_LEVEL = 3
#: Captured hours whose row count is compared with the log again on every run, in case a
#: write stalled beyond the grace period (older hours are compared before retention).
LATE_ROW_RECHECK = dt.timedelta(hours=6)
#: Rows deleted per transaction by default (SQLite takes at most 32,766 parameters).
DELETE_BATCH = 5_000
MAX_DELETE_BATCH = 20_000
#: Format of the capture's lines and manifests.
CAPTURE_SCHEMA = 1
PREDICTION_FIELDS = (
    "query_id",
    "created_at",
    "model",
    "version",
    "prediction",
    "confidence",
    "latency_ms",
    "image_sha256",
    "label",
    "labelled_at",
    "features",
)
LABEL_FIELDS = ("query_id", "created_at", "model", "version", "label", "labelled_at")
#: Every line starts with its query id, so ids are read without parsing the JSON.
_ID_PREFIX = b'{"query_id":"'
_ID_SLICE = slice(len(_ID_PREFIX), len(_ID_PREFIX) + 36)
_ROW_COLUMNS = (
    "query_id",
    "created_at",
    "features",
    "prediction",
    "confidence",
    "latency_ms",
    "image_sha256",
    "label",
    "labelled_at",
)
_NUMBER_TEXT = [str(i) for i in range(256)]


# --- Settings -------------------------------------------------------------------------------
@dataclass(frozen=True)
class LifecycleSettings:
    retention_days: int
    grace: dt.timedelta
    max_hours: int | None
    delete_batch: int


def lifecycle_settings(
    *,
    retention_days: int | None = None,
    grace_seconds: int | None = None,
    max_hours: int | None = None,
    delete_batch: int | None = None,
) -> LifecycleSettings:
    """The ``DIGITS_LOG_*`` settings, with any given value taking precedence; checked."""
    days = settings.DIGITS_LOG_RETENTION_DAYS if retention_days is None else retention_days
    grace = settings.DIGITS_LOG_GRACE_SECONDS if grace_seconds is None else grace_seconds
    if int(days) != days or days < 1:
        raise MaintenanceError(
            f"DIGITS_LOG_RETENTION_DAYS must be a whole number of days >= 1, got {days!r}"
        )
    if int(grace) != grace or grace < 0:
        raise MaintenanceError(
            f"DIGITS_LOG_GRACE_SECONDS must be a whole number of seconds >= 0, got {grace!r}"
        )
    batch = DELETE_BATCH if delete_batch is None else delete_batch
    if not 1 <= batch <= MAX_DELETE_BATCH:
        raise MaintenanceError(f"the delete batch must be 1..{MAX_DELETE_BATCH}, got {batch!r}")
    return LifecycleSettings(
        retention_days=int(days),
        grace=dt.timedelta(seconds=int(grace)),
        max_hours=max_hours,
        delete_batch=batch,
    )


# --- Reading an hour of the log -----------------------------------------------------------
def _hour_queryset(version_id: int, hour: dt.datetime):
    return Prediction.objects.filter(
        model_version_id=version_id, created_at__gte=hour, created_at__lt=hour + HOUR
    )


def _chunks(iterator, size: int) -> Iterator[list]:
    block = []
    for item in iterator:
        block.append(item)
        if len(block) == size:
            yield block
            block = []
    if block:
        yield block


def _hour_row_chunks(version_id: int, hour: dt.datetime) -> Iterator[list[tuple]]:
    """Every row of the hour, every logged field, in (created_at, query_id) order.

    One SELECT: on SQLite (WAL) and PostgreSQL alike it reads one snapshot of the log.
    Rows come from a raw cursor, without Django's per-row converters (a third of the
    capture's time): query ids as text, times as the driver returns them (naive UTC on
    SQLite), see ``_iso_text`` and ``_aware``.
    """
    qs = (
        _hour_queryset(version_id, hour)
        .order_by("created_at", "query_id")
        .values_list(*_ROW_COLUMNS)
    )
    sql, params = qs.query.sql_with_params()
    postgres = connection.vendor == "postgresql"
    atomic = transaction.atomic() if postgres else contextlib.nullcontext()
    server_side = not connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS")
    open_cursor = connection.chunked_cursor if server_side and postgres else connection.cursor
    with atomic, open_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(CHUNK_ROWS):
            yield [(_query_id_text(r[0]), *r[1:]) for r in rows]


def _query_id_text(value) -> str:
    """A query id as ``str(uuid)`` gives it, from a UUID or SQLite's 32 hex digits."""
    if isinstance(value, str) and len(value) == 32:
        return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
    return str(value)


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    """A time from a raw cursor as an aware UTC datetime (SQLite's are naive UTC)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=dt.UTC)


def _summarise_chunk(total: log_summary.LogSummary, rows: list[tuple]) -> None:
    features = np.frombuffer(b"".join(bytes(r[2]) for r in rows), dtype=np.uint8)
    total.add_block(
        features.reshape(len(rows), 64),
        [r[3] for r in rows],
        [r[4] for r in rows],
        latency_ms=[r[5] for r in rows],
        labels=[r[7] for r in rows],
        first=_aware(rows[0][1]),
        last=_aware(rows[-1][1]),
    )


def hour_summary_compute(version_id: int, hour: dt.datetime) -> log_summary.LogSummary:
    """The summary of one hour of a version's log, from its rows."""
    total = log_summary.LogSummary()
    columns = ("features", "prediction", "confidence", "latency_ms", "label")
    qs = _hour_queryset(version_id, hour).order_by()
    bounds = qs.aggregate(first=Min("created_at"), last=Max("created_at"))
    rows = qs.values_list(*columns).iterator(chunk_size=CHUNK_ROWS)
    for block in _chunks(rows, CHUNK_ROWS):
        features = np.frombuffer(b"".join(bytes(r[0]) for r in block), dtype=np.uint8)
        total.add_block(
            features.reshape(len(block), 64),
            [r[1] for r in block],
            [r[2] for r in block],
            latency_ms=[r[3] for r in block],
            labels=[r[4] for r in block],
        )
    if total.n:
        total.first, total.last = bounds["first"], bounds["last"]
    return total


# --- Writing capture objects ----------------------------------------------------------------
def _iso(moment: dt.datetime | None) -> str:
    """A time as JSON: ISO 8601 to the microsecond, in UTC with its offset (or null)."""
    if moment is None:
        return "null"
    text = moment.isoformat(timespec="microseconds")
    return f'"{text}"' if moment.tzinfo is not None else f'"{text}+00:00"'


def prediction_line(model_json: str, version: int, row: tuple) -> str:
    """One captured prediction as a JSON line (fields in ``PREDICTION_FIELDS`` order)."""
    query_id, created, features, prediction, confidence, latency, sha, label, labelled = row
    return (
        f'{{"query_id":"{query_id}","created_at":{_iso(created)},"model":{model_json},'
        f'"version":{version},"prediction":{prediction},"confidence":{confidence!r},'
        f'"latency_ms":{latency!r},"image_sha256":"{sha}",'
        f'"label":{"null" if label is None else label},"labelled_at":{_iso(labelled)},'
        f'"features":[{",".join([_NUMBER_TEXT[b] for b in bytes(features)])}]}}\n'
    )


class PartWriter:
    """A gzip JSON Lines file being written: its sha256, size, rows, first and last time.

    The gzip header carries no file name or time, so the same rows give the same bytes.
    """

    def __init__(self, path: Path, level: int = GZIP_LEVEL):
        self.path = path
        self._fh = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._zip = zlib.compressobj(level, zlib.DEFLATED, 31)
        self._sha = hashlib.sha256()
        self.rows = 0
        self.bytes = 0
        self.first: dt.datetime | None = None
        self.last: dt.datetime | None = None

    def write(self, lines: list[str], first: dt.datetime, last: dt.datetime) -> None:
        if not lines:
            return
        self._out(self._zip.compress("".join(lines).encode()))
        self.rows += len(lines)
        self.first = first if self.first is None else self.first
        self.last = last

    def _out(self, data: bytes) -> None:
        self._fh.write(data)
        self._sha.update(data)
        self.bytes += len(data)

    def close(self) -> str:
        """Finish the file; its sha256."""
        self._out(self._zip.flush())
        self._fh.close()
        return self._sha.hexdigest()


@dataclass
class WrittenPart:
    key: str
    part: int
    rows: int
    bytes: int
    sha256: str
    first: dt.datetime | None
    last: dt.datetime | None
    summary: log_summary.LogSummary | None = None


def recapture_hint(hour: dt.datetime) -> str:
    """How an operator rebuilds a lost capture of ``hour`` (named in every "missing" error)."""
    return (
        "if the capture was lost (a bucket recreated empty), rebuild it from the rows still "
        f"in the database: manage.py maintain --recapture {hour:%Y-%m-%dT%H}"
    )


def _check_object(
    store, key: str, path: Path, *, sha256: str, rows: int, hour: dt.datetime | None = None
) -> None:
    """Download ``key`` to ``path`` and check its digest and line count."""
    try:
        store.get_file(key, path)
    except storage.ObjectMissingError as exc:
        hint = f"; {recapture_hint(hour)}" if hour is not None else ""
        raise CaptureMismatchError(f"{key} is missing from {store.describe()}{hint}") from exc
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    if digest.hexdigest() != sha256:
        raise CaptureMismatchError(f"{key} in {store.describe()} does not have sha256 {sha256}")
    lines = 0
    try:
        with gzip.open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                lines += block.count(b"\n")
    except (OSError, EOFError, zlib.error) as exc:
        raise CaptureMismatchError(f"{key} in {store.describe()} is not valid gzip") from exc
    if lines != rows:
        raise CaptureMismatchError(f"{key} holds {lines} rows, {rows} were recorded")


def _upload_checked(store, key: str, path: Path, sha256: str, rows: int, scratch: Path) -> None:
    """Put the file, then read it back and check it: recorded only once it is really there."""
    store.put_file(key, path)
    _check_object(store, key, scratch / "readback", sha256=sha256, rows=rows)


def _captured_ids(parts: list[CapturePart], store, scratch: Path) -> np.ndarray:
    """Sorted query ids (36-byte strings) of the checked capture parts of an hour."""
    ids = []
    for part in parts:
        path = scratch / f"ids-{part.part}"
        _check_object(store, part.key, path, sha256=part.sha256, rows=part.rows, hour=part.hour)
        with gzip.open(path, "rb") as fh:
            ids.extend(line[_ID_SLICE] for line in fh)
        path.unlink()
    return np.sort(np.array(ids, dtype="S36"))


def _write_hour_part(
    *,
    version: ModelVersion,
    hour: dt.datetime,
    part: int,
    scratch: Path,
    exclude: np.ndarray | None = None,
) -> WrittenPart:
    """Write the hour's rows (all, or those whose id is not in ``exclude``) to a local part
    file, summarising exactly the rows written."""
    model_json = json.dumps(version.model.name)
    path = scratch / f"part-{part:04d}.jsonl.gz"
    writer = PartWriter(path)
    total = log_summary.LogSummary()
    for rows in _hour_row_chunks(version.pk, hour):
        if exclude is not None and len(exclude):
            ids = np.array([r[0].encode() for r in rows], dtype="S36")
            at = np.minimum(np.searchsorted(exclude, ids), len(exclude) - 1)
            rows = [r for r, seen in zip(rows, exclude[at] == ids, strict=True) if not seen]
            if not rows:
                continue
        writer.write(
            [prediction_line(model_json, version.version, r) for r in rows],
            _aware(rows[0][1]),
            _aware(rows[-1][1]),
        )
        _summarise_chunk(total, rows)
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


def _manifest(version: ModelVersion, hour: dt.datetime, parts: list) -> dict:
    firsts = [p.first for p in parts if p.first is not None]
    lasts = [p.last for p in parts if p.last is not None]
    return {
        "schema": CAPTURE_SCHEMA,
        "kind": "predictions",
        "model": version.model.name,
        "version": version.version,
        "hour": hour.isoformat(),
        "fields": list(PREDICTION_FIELDS),
        "rows": sum(p.rows for p in parts),
        "first_created_at": min(firsts).isoformat() if firsts else None,
        "last_created_at": max(lasts).isoformat() if lasts else None,
        "parts": [
            {
                "key": p.key,
                "part": p.part,
                "rows": p.rows,
                "bytes": p.bytes,
                "sha256": p.sha256,
                "first_created_at": p.first.isoformat() if p.first else None,
                "last_created_at": p.last.isoformat() if p.last else None,
            }
            for p in parts
        ],
    }


def _part_view(part: CapturePart) -> WrittenPart:
    return WrittenPart(
        key=part.key,
        part=part.part,
        rows=part.rows,
        bytes=part.bytes,
        sha256=part.sha256,
        first=part.first_at,
        last=part.last_at,
    )


# --- Summary rows ---------------------------------------------------------------------------
def _summary_fields(total: log_summary.LogSummary) -> dict:
    return {
        "n": total.n,
        "value_counts": total.value_counts.tolist(),
        "class_counts": total.class_counts.tolist(),
        "confidence_units": str(total.confidence_units),
        "latency_counts": total.latency_counts.tolist(),
        "labelled": total.labelled,
        "correct": total.correct,
        "first_created_at": total.first,
        "last_created_at": total.last,
    }


def summary_document(row: PredictionHour) -> dict:
    """The JSON kept in the store beside the summary row."""
    version = row.model_version
    return {
        "schema": CAPTURE_SCHEMA,
        "model": version.model.name,
        "version": version.version,
        "hour": row.hour.isoformat(),
        "summarised_at": row.summarised_at.isoformat(),
        "captured_rows": row.captured_rows,
        **hour_summary_read(row).to_dict(),
    }


def _store_summary(store, row: PredictionHour) -> None:
    storage.put_json(store, row.summary_key, summary_document(row))
    PredictionHour.objects.filter(pk=row.pk, summarised_at=row.summarised_at).update(
        summary_stored=True
    )


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
    lock = contextlib.nullcontext() if dry_run else _maintenance_lock()
    with lock, tempfile.TemporaryDirectory(prefix="digits-maintain-") as scratch_dir:
        scratch = Path(scratch_dir)
        steps = [
            ("summarise", lambda: _step_summarise(report, closed_before, config, dry_run)),
            ("capture", lambda: _step_capture(report, closed_before, config, dry_run, scratch)),
            ("retention", lambda: _step_retention(report, cutoff, config, dry_run, scratch)),
        ]
        if reindex:
            report.reindex = {}
            steps.append(("reindex", lambda: report.reindex.update(log_reindex(dry_run=dry_run))))
        for name, step in steps:
            started = time.monotonic()
            try:
                step()
            except (storage.StoreError, MaintenanceError, DatabaseError) as exc:
                report.failed_step, report.error = name, str(exc).splitlines()[0]
                logger.warning("maintain: the %s step failed: %s", name, report.error)
                break
            finally:
                getattr(report, name)["seconds"] = round(time.monotonic() - started, 3)
    return report


@contextlib.contextmanager
def _maintenance_lock():
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


def _limit(config: LifecycleSettings, done: int) -> bool:
    return config.max_hours is not None and done >= config.max_hours


# --- Step 1: summarise ---------------------------------------------------------------------
def _hours_with_rows(version_id: int, *, before: dt.datetime) -> Iterator[dt.datetime]:
    """Each hour (start) before ``before`` in which the version has rows, oldest first: one
    index seek per hour, whatever the table's size."""
    qs = Prediction.objects.filter(model_version_id=version_id)
    cursor = None
    while True:
        rows = qs if cursor is None else qs.filter(created_at__gte=cursor)
        first = rows.filter(created_at__lt=before).aggregate(first=Min("created_at"))["first"]
        if first is None:
            return
        hour = hour_floor(first)
        yield hour
        cursor = hour + HOUR


def hours_to_summarise(closed_before: dt.datetime) -> Iterator[tuple[ModelVersion, dt.datetime]]:
    """(version, hour) of every closed hour with rows and no summary yet, oldest first."""
    for version in ModelVersion.objects.select_related("model").order_by("pk"):
        done = set(
            PredictionHour.objects.filter(model_version=version).values_list("hour", flat=True)
        )
        for hour in _hours_with_rows(version.pk, before=closed_before + HOUR):
            if hour not in done:
                yield version, hour


def _step_summarise(report, closed_before, config, dry_run) -> None:
    info = report.summarise = {"hours": 0, "rows": 0, "label_hours": 0, "stored": 0, "more": False}
    for version, hour in hours_to_summarise(closed_before):
        if _limit(config, info["hours"]):
            info["more"] = True
            break
        info["hours"] += 1
        if dry_run:
            continue
        total = hour_summary_compute(version.pk, hour)
        if total.n == 0:  # the rows went between the seek and the scan
            continue
        row = PredictionHour(
            model_version=version,
            hour=hour,
            summarised_at=timezone.now(),
            summary_key=storage.summary_key(version.model.name, version.version, hour),
            **_summary_fields(total),
        )
        with transaction.atomic():
            if PredictionHour.objects.filter(model_version=version, hour=hour).exists():
                continue
            row.save()
        info["rows"] += total.n
        logger.info("summarised %s hour %s: %d rows", version, hour.isoformat(), total.n)
    info["label_hours"] = _count_label_hours(closed_before, config, dry_run)
    if dry_run:
        return
    store = storage.get_store()
    for row in PredictionHour.objects.filter(summary_stored=False).select_related(
        "model_version__model"
    ):
        _store_summary(store, row)
        info["stored"] += 1


def _label_hours(closed_before: dt.datetime) -> Iterator[dt.datetime]:
    """Closed labelling hours not counted yet: seeks on ``labelled_at``, after the last one
    counted."""
    latest = LabelHour.objects.filter(counted_at__isnull=False).aggregate(h=Max("hour"))["h"]
    cursor = None if latest is None else latest + HOUR
    labelled = Prediction.objects.filter(labelled_at__isnull=False)
    while True:
        rows = labelled if cursor is None else labelled.filter(labelled_at__gte=cursor)
        first = rows.filter(labelled_at__lt=closed_before + HOUR).aggregate(f=Min("labelled_at"))[
            "f"
        ]
        if first is None:
            return
        hour = hour_floor(first)
        yield hour
        cursor = hour + HOUR


def _count_label_hours(closed_before, config, dry_run) -> int:
    """Recount labelled/correct in the summaries of the hours whose rows got labels."""
    counted = 0
    for label_hour in _label_hours(closed_before):
        if _limit(config, counted):
            break
        counted += 1
        if dry_run:
            continue
        touched = set()
        for version_id, created in Prediction.objects.filter(
            labelled_at__gte=label_hour, labelled_at__lt=label_hour + HOUR
        ).values_list("model_version_id", "created_at"):
            touched.add((version_id, hour_floor(created)))
        with transaction.atomic():
            for version_id, hour in sorted(touched):
                counts = (
                    _hour_queryset(version_id, hour)
                    .filter(label__isnull=False)
                    .aggregate(
                        labelled=Count("pk"), correct=Count("pk", filter=Q(label=F("prediction")))
                    )
                )
                PredictionHour.objects.filter(model_version_id=version_id, hour=hour).exclude(
                    labelled=counts["labelled"], correct=counts["correct"]
                ).update(summary_stored=False, **counts)
            LabelHour.objects.update_or_create(
                hour=label_hour, defaults={"counted_at": timezone.now()}
            )
    return counted


# --- Step 2: capture -------------------------------------------------------------------------
def _step_capture(report, closed_before, config, dry_run, scratch: Path) -> None:
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
    if dry_run:
        info["hours"] = pending.count()
        info["label_hours"] = LabelHour.objects.filter(
            counted_at__isnull=False, captured_at__isnull=True
        ).count()
        return
    store = storage.get_store()
    for row in pending.order_by("hour", "model_version_id"):
        if _limit(config, info["hours"]):
            info["more"] = True
            break
        written = _capture_hour(store, row, scratch)
        info["hours"] += 1
        info["rows"] += written.rows
        info["bytes"] += written.bytes
    recheck = PredictionHour.objects.filter(
        captured_rows__isnull=False,
        pruned_at__isnull=True,
        hour__gte=closed_before - LATE_ROW_RECHECK,
    ).select_related("model_version__model")
    for row in recheck:
        info["late_rows"] += _fold_late_rows(store, row, scratch)
    for label_hour in LabelHour.objects.filter(
        counted_at__isnull=False, captured_at__isnull=True
    ).order_by("hour"):
        if _limit(config, info["label_hours"]):
            info["more"] = True
            break
        info["labels"] += _capture_labels(store, label_hour, scratch)
        info["label_hours"] += 1


def _capture_hour(store, row: PredictionHour, scratch: Path) -> WrittenPart:
    """Capture an hour: write, upload and check part 0, write the manifest, then record the
    part and the summary of exactly those rows in one transaction."""
    version, hour = row.model_version, row.hour
    written = _write_hour_part(version=version, hour=hour, part=0, scratch=scratch)
    path = scratch / f"part-{0:04d}.jsonl.gz"
    _upload_checked(store, written.key, path, written.sha256, written.rows, scratch)
    storage.put_json(
        store,
        storage.capture_manifest_key(version.model.name, version.version, hour),
        _manifest(version, hour, [written]),
    )
    now = timezone.now()
    with transaction.atomic():
        locked = PredictionHour.objects.select_for_update().get(pk=row.pk)
        if locked.captured_rows is not None:
            raise MaintenanceError(f"{version} hour {hour.isoformat()} was captured meanwhile")
        CapturePart.objects.create(
            kind=CapturePart.Kind.PREDICTIONS,
            model_version=version,
            hour=hour,
            part=0,
            key=written.key,
            rows=written.rows,
            bytes=written.bytes,
            sha256=written.sha256,
            first_at=written.first,
            last_at=written.last,
            captured_at=now,
        )
        if written.summary.n:
            for name, value in _summary_fields(written.summary).items():
                setattr(locked, name, value)
        else:  # every row went (deleted by hand?): keep the summary, capture nothing more
            logger.warning("%s hour %s had no rows left to capture", version, hour.isoformat())
        locked.captured_rows = written.rows
        locked.captured_at = now
        locked.summarised_at = now
        locked.summary_stored = False
        locked.save()
    path.unlink()
    locked.model_version = version
    _store_summary(store, locked)
    logger.info(
        "captured %s hour %s: %d rows, %d bytes",
        version,
        hour.isoformat(),
        written.rows,
        written.bytes,
    )
    return written


def _late_rows(row: PredictionHour) -> int:
    """Rows in the log for this hour beyond those captured and not deleted since."""
    present = _hour_queryset(row.model_version_id, row.hour).count()
    return present - ((row.captured_rows or 0) - row.deleted_rows)


def _fold_late_rows(store, row: PredictionHour, scratch: Path) -> int:
    """Capture rows that reached an already captured hour as its next part, and add them to
    the hour's summary. Returns how many there were."""
    if _late_rows(row) <= 0:
        return 0
    version, hour = row.model_version, row.hour
    parts = list(
        CapturePart.objects.filter(
            kind=CapturePart.Kind.PREDICTIONS, model_version=version, hour=hour
        ).order_by("part")
    )
    captured = _captured_ids(parts, store, scratch)
    written = _write_hour_part(
        version=version, hour=hour, part=len(parts), scratch=scratch, exclude=captured
    )
    path = scratch / f"part-{written.part:04d}.jsonl.gz"
    if written.rows == 0:
        path.unlink()
        return 0
    _upload_checked(store, written.key, path, written.sha256, written.rows, scratch)
    storage.put_json(
        store,
        storage.capture_manifest_key(version.model.name, version.version, hour),
        _manifest(version, hour, [*map(_part_view, parts), written]),
    )
    now = timezone.now()
    with transaction.atomic():
        locked = PredictionHour.objects.select_for_update().get(pk=row.pk)
        CapturePart.objects.create(
            kind=CapturePart.Kind.PREDICTIONS,
            model_version=version,
            hour=hour,
            part=written.part,
            key=written.key,
            rows=written.rows,
            bytes=written.bytes,
            sha256=written.sha256,
            first_at=written.first,
            last_at=written.last,
            captured_at=now,
        )
        total = hour_summary_read(locked).add(written.summary)
        for name, value in _summary_fields(total).items():
            setattr(locked, name, value)
        locked.captured_rows += written.rows
        locked.summarised_at = now
        locked.summary_stored = False
        locked.save()
    path.unlink()
    locked.model_version = version
    _store_summary(store, locked)
    logger.warning(
        "%s hour %s: %d rows reached the log after it was captured; captured as part %d",
        version,
        hour.isoformat(),
        written.rows,
        written.part,
    )
    return written.rows


def _capture_labels(store, label_hour: LabelHour, scratch: Path) -> int:
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
    for block in _chunks(rows, CHUNK_ROWS):
        lines = [
            f'{{"query_id":"{q}","created_at":{_iso(c)},"model":{json.dumps(m)},'
            f'"version":{v},"label":{label},"labelled_at":{_iso(at)}}}\n'
            for q, c, m, v, label, at in block
        ]
        writer.write(lines, block[0][5], block[-1][5])
    sha256 = writer.close()
    key = storage.label_part_key(hour)
    _upload_checked(store, key, path, sha256, writer.rows, scratch)
    storage.put_json(
        store,
        storage.label_manifest_key(hour),
        {
            "schema": CAPTURE_SCHEMA,
            "kind": "labels",
            "hour": hour.isoformat(),
            "fields": list(LABEL_FIELDS),
            "rows": writer.rows,
            "first_labelled_at": writer.first.isoformat() if writer.first else None,
            "last_labelled_at": writer.last.isoformat() if writer.last else None,
            "parts": [
                {
                    "key": key,
                    "part": 0,
                    "rows": writer.rows,
                    "bytes": writer.bytes,
                    "sha256": sha256,
                }
            ],
        },
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


# --- Step 3: retention ---------------------------------------------------------------------
def _step_retention(report, cutoff, config, dry_run, scratch: Path) -> None:
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
    if dry_run:
        for row in ready:
            if _limit(config, info["hours"]):
                info["more"] = True
                break
            info["hours"] += 1
            info["rows_deleted"] += (
                _hour_queryset(row.model_version_id, row.hour).filter(label__isnull=True).count()
            )
        return
    store = storage.get_store()
    for row in ready.order_by("hour", "model_version_id"):
        if _limit(config, info["hours"]):
            info["more"] = True
            break
        deleted, kept, late = _prune_hour(store, row, config, scratch)
        info["hours"] += 1
        info["rows_deleted"] += deleted
        info["labelled_rows_kept"] += kept
        info["late_rows"] += late


def _prune_hour(store, row: PredictionHour, config, scratch: Path) -> tuple[int, int, int]:
    """Delete the hour's unlabelled rows that its checked capture holds; mark it pruned.

    Every part is downloaded and checked (present, sha256, row count) before the first
    delete; the ids to delete are read from those very files.
    """
    version, hour = row.model_version, row.hour
    late = _fold_late_rows(store, row, scratch)
    row.refresh_from_db()
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
        _check_object(store, part.key, path, sha256=part.sha256, rows=part.rows, hour=hour)
        files.append(path)
    deleted = 0
    for path in files:
        with gzip.open(path, "rb") as fh:
            for lines in _chunks(fh, config.delete_batch):
                ids = [uuid.UUID(line[_ID_SLICE].decode()) for line in lines]
                with transaction.atomic():
                    count, _ = (
                        _hour_queryset(version.pk, hour)
                        .filter(query_id__in=ids, label__isnull=True)
                        .delete()
                    )
                    if count:
                        PredictionHour.objects.filter(pk=row.pk).update(
                            deleted_rows=F("deleted_rows") + count
                        )
                deleted += count
        path.unlink()
    kept = _hour_queryset(version.pk, hour).count()
    PredictionHour.objects.filter(pk=row.pk).update(pruned_at=timezone.now())
    logger.info(
        "retention: %s hour %s: %d rows deleted, %d kept (labelled)",
        version,
        hour.isoformat(),
        deleted,
        kept,
    )
    return deleted, kept, late


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
    store = storage.get_store()
    rows = PredictionHour.objects.filter(captured_rows__isnull=False).select_related(
        "model_version__model"
    )
    if hour is not None:
        rows = rows.filter(hour=hour_floor(hour))
    report = {"dry_run": dry_run, "hours": [], "lost": [], "label_hours": [], "rows": 0}
    with contextlib.ExitStack() as stack:
        if not dry_run:
            stack.enter_context(_maintenance_lock())
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="digits-recap-")))
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
                report["rows"] += _recapture_hour(store, row, scratch)
        label_hours = LabelHour.objects.filter(captured_at__isnull=False)
        if hour is not None:
            label_hours = label_hours.filter(hour=hour_floor(hour))
        for label_hour in label_hours.order_by("hour"):
            if hour is None and store.exists(storage.label_manifest_key(label_hour.hour)):
                continue
            report["label_hours"].append(label_hour.hour.isoformat())
            if not dry_run:
                _capture_labels(store, label_hour, scratch)
    return report


def _recapture_hour(store, row: PredictionHour, scratch: Path) -> int:
    """Write the hour's capture again from its rows in the database; returns the rows."""
    version, hour = row.model_version, row.hour
    written = _write_hour_part(version=version, hour=hour, part=0, scratch=scratch)
    path = scratch / f"part-{0:04d}.jsonl.gz"
    _upload_checked(store, written.key, path, written.sha256, written.rows, scratch)
    storage.put_json(
        store,
        storage.capture_manifest_key(version.model.name, version.version, hour),
        _manifest(version, hour, [written]),
    )
    now = timezone.now()
    with transaction.atomic():
        locked = PredictionHour.objects.select_for_update().get(pk=row.pk)
        stale = CapturePart.objects.filter(
            kind=CapturePart.Kind.PREDICTIONS, model_version=version, hour=hour
        )
        for part in stale.exclude(part=0):  # later parts' objects, if any survived
            with contextlib.suppress(storage.StoreError):
                store.delete(part.key)
        stale.delete()
        CapturePart.objects.create(
            kind=CapturePart.Kind.PREDICTIONS,
            model_version=version,
            hour=hour,
            part=0,
            key=written.key,
            rows=written.rows,
            bytes=written.bytes,
            sha256=written.sha256,
            first_at=written.first,
            last_at=written.last,
            captured_at=now,
        )
        if locked.deleted_rows == 0 and written.summary.n:
            for name, value in _summary_fields(written.summary).items():
                setattr(locked, name, value)
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
        locked.summarised_at = now
        locked.summary_stored = False
        locked.save()
    path.unlink()
    locked.model_version = version
    _store_summary(store, locked)
    logger.warning("recaptured %s hour %s: %d rows", version, hour.isoformat(), written.rows)
    return written.rows


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


# --- Reading the capture back ----------------------------------------------------------------
def capture_lines(
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    model: str | None = None,
    scratch: Path,
) -> Iterator[dict]:
    """Every captured prediction logged in ``[since, until]`` (oldest hour first), as dicts,
    from the checked objects of the store; labels captured later are applied (the latest
    ``labelled_at`` wins)."""
    store = storage.get_store()
    parts = CapturePart.objects.filter(kind=CapturePart.Kind.PREDICTIONS).select_related(
        "model_version__model"
    )
    if since is not None:
        parts = parts.filter(hour__gte=hour_floor(since))
    if until is not None:
        parts = parts.filter(hour__lte=until)
    if model is not None:
        parts = parts.filter(model_version__model__name=model)
    labels = _captured_labels(store, since=since, scratch=scratch)
    for part in parts.order_by(
        "hour", "model_version__model__name", "model_version__version", "part"
    ):
        path = scratch / "export.jsonl.gz"
        _check_object(store, part.key, path, sha256=part.sha256, rows=part.rows)
        with gzip.open(path, "rt") as fh:
            for line in fh:
                record = json.loads(line)
                created = dt.datetime.fromisoformat(record["created_at"])
                if (since is not None and created < since) or (
                    until is not None and created > until
                ):
                    continue
                newer = labels.get(record["query_id"])
                if newer is not None and (
                    record["labelled_at"] is None or newer[1] > record["labelled_at"]
                ):
                    record["label"], record["labelled_at"] = newer
                yield record
        path.unlink()


def _captured_labels(store, *, since, scratch: Path) -> dict[str, tuple[int, str]]:
    """query id -> (label, labelled_at) from the captured label hours since ``since``."""
    parts = CapturePart.objects.filter(kind=CapturePart.Kind.LABELS)
    if since is not None:
        parts = parts.filter(hour__gte=hour_floor(since))
    labels: dict[str, tuple[int, str]] = {}
    for part in parts.order_by("hour"):
        path = scratch / "labels.jsonl.gz"
        _check_object(store, part.key, path, sha256=part.sha256, rows=part.rows)
        with gzip.open(path, "rt") as fh:
            for line in fh:
                record = json.loads(line)
                previous = labels.get(record["query_id"])
                if previous is None or record["labelled_at"] > previous[1]:
                    labels[record["query_id"]] = (record["label"], record["labelled_at"])
        os.unlink(path)
    return labels
