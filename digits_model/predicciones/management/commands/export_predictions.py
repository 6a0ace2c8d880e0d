"""Write the prediction log as JSON Lines: one logged prediction a line, oldest first.

Streams rows in chunks, so it runs in constant memory on any log size.
"""

import json
import os
import sys

from predicciones.management.base import OperatorCommand, parse_since
from predicciones.models import Prediction
from predicciones.selectors import model_get


class Command(OperatorCommand):
    help = "Export logged predictions as JSON Lines on stdout."

    def add_arguments(self, parser):
        parser.add_argument("--since", help="ISO 8601 time; only predictions at or after it.")
        parser.add_argument("--model", help="Only this model's predictions.")

    def handle(self, *args, since, model, **options):
        rows = Prediction.objects.select_related("model_version__model").order_by("created_at")
        if since:
            rows = rows.filter(created_at__gte=parse_since(since))
        if model:
            model_get(name=model)
            rows = rows.filter(model_version__model__name=model)
        try:
            self._write(rows)
        except BrokenPipeError:
            # The reader went away (e.g. `| head`): stop quietly, like other Unix tools.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

    def _write(self, rows):
        for row in rows.iterator(chunk_size=2000):
            record = {
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
            self.stdout.write(json.dumps(record))
