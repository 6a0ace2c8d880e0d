"""Run in a separate process against a server's database and store (its environment):

    python -m predicciones.tests.e2e.lifecycle_probe maintain 2026-12-01T13:10:00+00:00 [DAYS]
    python -m predicciones.tests.e2e.lifecycle_probe state

``maintain`` runs the lifecycle with its clock at the given time (so an hour still being
written counts as closed); ``state`` prints the summaries and capture parts. One JSON
document on stdout.
"""

import datetime as dt
import json
import os
import sys

import django


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digits_model.settings")
    django.setup()
    from predicciones.models import CapturePart, PredictionHour
    from predicciones.services.lifecycle import lifecycle_settings, log_maintain

    if argv[0] == "maintain":
        now = dt.datetime.fromisoformat(argv[1])
        days = int(argv[2]) if len(argv) > 2 else 30
        report = log_maintain(now=now, config=lifecycle_settings(retention_days=days))
        print(json.dumps(report.to_dict()))
        return 0 if report.failed_step is None else 2
    hours = [
        {
            "hour": h.hour.isoformat(),
            "n": h.n,
            "captured_rows": h.captured_rows,
            "deleted_rows": h.deleted_rows,
        }
        for h in PredictionHour.objects.order_by("hour")
    ]
    parts = [
        {"key": p.key, "rows": p.rows, "sha256": p.sha256}
        for p in CapturePart.objects.filter(kind="predictions").order_by("key")
    ]
    print(json.dumps({"hours": hours, "parts": parts}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
