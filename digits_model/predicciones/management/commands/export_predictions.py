"""Write the prediction log as JSON Lines: one logged prediction a line, oldest first.

From the database (default), or with ``--from-capture`` from the capture in the artifact
store, where rows stay after retention has deleted them from the database: each object is
checked (sha256, row count) before it is read, and labels captured after their prediction
are applied. Either way the lines have the same fields. Streams in chunks, so it runs in
constant memory on any log size (a capture export holds one hour's object on disk at a time).
"""

import json
import os
import sys
import tempfile
from pathlib import Path

from predicciones.management.base import OperatorCommand, parse_since
from predicciones.prediction_log.export import capture_records, database_records
from predicciones.selectors import model_get


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
        window = {
            "since": parse_since(since) if since else None,
            "until": parse_since(until, "--until") if until else None,
            "model": model,
        }
        if model:
            model_get(name=model)
        try:
            if from_capture:
                with tempfile.TemporaryDirectory(prefix="digits-export-") as scratch:
                    self._write(capture_records(**window, scratch=Path(scratch)))
            else:
                self._write(database_records(**window))
        except BrokenPipeError:
            # The reader went away (e.g. `| head`): stop quietly, like other Unix tools.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

    def _write(self, records):
        for record in records:
            self.stdout.write(json.dumps(record))
