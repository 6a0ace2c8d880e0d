"""Write the prediction log as JSON Lines: one logged prediction a line, oldest first.

From the database (default), or with ``--from-capture`` from the capture in the artifact
store, where rows stay after retention has deleted them from the database: each object is
checked (sha256, row count) before it is read, and labels captured after their prediction
are applied. Either way the lines have the same fields. Streams in chunks, so it runs in
constant memory on any log size (a capture export holds one hour's object on disk at a time).
"""

import datetime as dt
import json
import os
import sys
import tempfile
from pathlib import Path

from predicciones.management.base import OperatorCommand, parse_since
from predicciones.models import Prediction
from predicciones.selectors import model_get
from predicciones.services.lifecycle import capture_lines


class Command(OperatorCommand):
    help = "Export logged predictions as JSON Lines on stdout."

    def add_arguments(self, parser):
        parser.add_argument("--since", help="ISO 8601 time; only predictions at or after it.")
        parser.add_argument("--until", help="ISO 8601 time; only predictions at or before it.")
        parser.add_argument("--model", help="Only this model's predictions.")
        parser.add_argument(
            "--from-capture",
            action="store_true",
            help="Read the capture in the artifact store instead of the database.",
        )

    def handle(self, *args, since, until, model, from_capture, **options):
        since = parse_since(since) if since else None
        until = parse_since(until, "--until") if until else None
        if model:
            model_get(name=model)
        try:
            if from_capture:
                with tempfile.TemporaryDirectory(prefix="digits-export-") as scratch:
                    records = capture_lines(
                        since=since, until=until, model=model, scratch=Path(scratch)
                    )
                    self._write(map(from_capture_record, records))
            else:
                rows = Prediction.objects.select_related("model_version__model").order_by(
                    "created_at"
                )
                if since:
                    rows = rows.filter(created_at__gte=since)
                if until:
                    rows = rows.filter(created_at__lte=until)
                if model:
                    rows = rows.filter(model_version__model__name=model)
                self._write(map(from_row, rows.iterator(chunk_size=2000)))
        except BrokenPipeError:
            # The reader went away (e.g. `| head`): stop quietly, like other Unix tools.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

    def _write(self, records):
        for record in records:
            self.stdout.write(json.dumps(record))


def from_row(row: Prediction) -> dict:
    return {
        "query_id": str(row.query_id),
        "time": row.created_at.isoformat(),
        "model": row.model_version.model.name,
        "version": row.model_version.version,
        "prediction": row.prediction,
        "confidence": row.confidence,
        "latency_ms": round(row.latency_ms, 4),
        "image_sha256": row.image_sha256,
        "features": list(bytes(row.features)),
        "label": row.label,
    }


def from_capture_record(record: dict) -> dict:
    """A captured line in the same shape as a database row's."""
    return {
        "query_id": record["query_id"],
        "time": dt.datetime.fromisoformat(record["created_at"]).isoformat(),
        "model": record["model"],
        "version": record["version"],
        "prediction": record["prediction"],
        "confidence": record["confidence"],
        "latency_ms": round(record["latency_ms"], 4),
        "image_sha256": record["image_sha256"],
        "features": record["features"],
        "label": record["label"],
    }
