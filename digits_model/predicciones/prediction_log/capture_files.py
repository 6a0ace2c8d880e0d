"""The capture's objects: gzip JSON Lines parts, their manifests, and how each is checked.

A part is written locally (:class:`PartWriter`: the same rows give the same bytes), put in
the artifact store, read back and checked (present, sha256, row count) before anything
records it; the same check runs before retention deletes the rows a part holds.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import storage
from ..exceptions import CaptureMismatchError
from ..ml import summary as log_summary
from ..models import CapturePart, ModelVersion
from .layout import ROW_COLUMNS
from .summaries import DOCUMENT_SCHEMA

#: zlib level for the capture: 3 packs the log about 5:1, at nearly four times the speed
#: of gzip's default 6 (which saves another 15 % of the bytes).
GZIP_LEVEL = 3
#: A captured prediction's fields, in the order of its line: a row's every column, the model
#: and version named after its time.
PREDICTION_FIELDS = (*ROW_COLUMNS[:2], "model", "version", *ROW_COLUMNS[2:])
LABEL_FIELDS = ("query_id", "created_at", "model", "version", "label", "labelled_at")
#: Every line starts with its query id, so ids are read without parsing the JSON.
_ID_PREFIX = b'{"query_id":"'
ID_SLICE = slice(len(_ID_PREFIX), len(_ID_PREFIX) + 36)
_NUMBER_TEXT = [str(i) for i in range(256)]


# --- Lines ------------------------------------------------------------------------------------
def iso_json(moment: dt.datetime | None) -> str:
    """A time as JSON: ISO 8601 to the microsecond, in UTC with its offset (or null)."""
    if moment is None:
        return "null"
    text = moment.isoformat(timespec="microseconds")
    return f'"{text}"' if moment.tzinfo is not None else f'"{text}+00:00"'


def prediction_line(model_json: str, version: int, row: tuple) -> str:
    """One captured prediction as a JSON line (fields in :data:`PREDICTION_FIELDS` order),
    from a row of :data:`~.layout.ROW_COLUMNS`."""
    query_id, created, prediction, confidence, latency, sha, label, labelled, features = row
    return (
        f'{{"query_id":"{query_id}","created_at":{iso_json(created)},"model":{model_json},'
        f'"version":{version},"prediction":{prediction},"confidence":{confidence!r},'
        f'"latency_ms":{latency!r},"image_sha256":"{sha}",'
        f'"label":{"null" if label is None else label},"labelled_at":{iso_json(labelled)},'
        f'"features":[{",".join([_NUMBER_TEXT[b] for b in bytes(features)])}]}}\n'
    )


def label_line(query_id, created, model: str, version: int, label: int, labelled) -> str:
    """One captured label as a JSON line (fields in :data:`LABEL_FIELDS` order)."""
    return (
        f'{{"query_id":"{query_id}","created_at":{iso_json(created)},"model":{json.dumps(model)},'
        f'"version":{version},"label":{label},"labelled_at":{iso_json(labelled)}}}\n'
    )


# --- Part files -------------------------------------------------------------------------------
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


#: A written part's attributes -> the columns of its :class:`CapturePart` record.
PART_COLUMNS = {
    "key": "key",
    "part": "part",
    "rows": "rows",
    "bytes": "bytes",
    "sha256": "sha256",
    "first": "first_at",
    "last": "last_at",
}


@dataclass
class WrittenPart:
    """A part of an hour's capture: written here (with the summary of exactly its rows), or
    as recorded (:meth:`of`)."""

    key: str
    part: int
    rows: int
    bytes: int
    sha256: str
    first: dt.datetime | None
    last: dt.datetime | None
    summary: log_summary.LogSummary | None = None

    @classmethod
    def of(cls, part: CapturePart) -> WrittenPart:
        return cls(**{name: getattr(part, column) for name, column in PART_COLUMNS.items()})

    def columns(self) -> dict:
        """The part's record as :class:`CapturePart` fields (kind, version, hour aside)."""
        return {column: getattr(self, name) for name, column in PART_COLUMNS.items()}


def part_path(scratch: Path, part: int) -> Path:
    """Where part ``part`` of an hour is written before it is uploaded."""
    return scratch / f"part-{part:04d}.jsonl.gz"


def manifest(version: ModelVersion, hour: dt.datetime, parts: list[WrittenPart]) -> dict:
    """The manifest of an hour's capture: its rows, times, fields, and each part."""
    firsts = [p.first for p in parts if p.first is not None]
    lasts = [p.last for p in parts if p.last is not None]
    return {
        "schema": DOCUMENT_SCHEMA,
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


def label_manifest(hour: dt.datetime, key: str, writer: PartWriter, sha256: str) -> dict:
    """The manifest of an hour of labels (one part)."""
    return {
        "schema": DOCUMENT_SCHEMA,
        "kind": "labels",
        "hour": hour.isoformat(),
        "fields": list(LABEL_FIELDS),
        "rows": writer.rows,
        "first_labelled_at": writer.first.isoformat() if writer.first else None,
        "last_labelled_at": writer.last.isoformat() if writer.last else None,
        "parts": [
            {"key": key, "part": 0, "rows": writer.rows, "bytes": writer.bytes, "sha256": sha256}
        ],
    }


# --- Checked objects ------------------------------------------------------------------------------
def recapture_hint(hour: dt.datetime) -> str:
    """How an operator rebuilds a lost capture of ``hour`` (named in every "missing" error)."""
    return (
        "if the capture was lost (a bucket recreated empty), rebuild it from the rows still "
        f"in the database: manage.py maintain --recapture {hour:%Y-%m-%dT%H}"
    )


def object_check(
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


def part_check(store, part: CapturePart, path: Path, *, hint: bool = True) -> None:
    """:func:`object_check` of a recorded part (``hint``: a missing one names the recapture)."""
    object_check(
        store,
        part.key,
        path,
        sha256=part.sha256,
        rows=part.rows,
        hour=part.hour if hint else None,
    )


def upload_checked(store, key: str, path: Path, sha256: str, rows: int, scratch: Path) -> None:
    """Put the file, then read it back and check it: recorded only once it is really there."""
    store.put_file(key, path)
    object_check(store, key, scratch / "readback", sha256=sha256, rows=rows)


def captured_ids(parts: list[CapturePart], store, scratch: Path) -> np.ndarray:
    """Sorted query ids (36-byte strings) of the checked capture parts of an hour."""
    ids = []
    for part in parts:
        path = scratch / f"ids-{part.part}"
        part_check(store, part, path)
        with gzip.open(path, "rb") as fh:
            ids.extend(line[ID_SLICE] for line in fh)
        path.unlink()
    return np.sort(np.array(ids, dtype="S36"))
