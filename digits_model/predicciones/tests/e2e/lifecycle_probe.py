"""Run in a separate process against a server's database and store (its environment):

    python -m predicciones.tests.e2e.lifecycle_probe maintain 2026-12-01T13:10:00+00:00 [DAYS]
    python -m predicciones.tests.e2e.lifecycle_probe state
    python -m predicciones.tests.e2e.lifecycle_probe compare SINCE UNTIL
    python -m predicciones.tests.e2e.lifecycle_probe readers SINCE UNTIL

``maintain`` runs the lifecycle with its clock at the given time (so an hour still being
written counts as closed); ``state`` prints the summaries and capture parts; ``compare``
the drift report of a window read from summaries and from raw rows; ``readers`` the raw
rows of a window read by two connections at once and by one. One JSON document on stdout.
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
    from predicciones.options import lifecycle_settings
    from predicciones.prediction_log.maintenance import log_maintain

    if argv[0] == "maintain":
        now = dt.datetime.fromisoformat(argv[1])
        days = int(argv[2]) if len(argv) > 2 else 30
        report = log_maintain(now=now, config=lifecycle_settings(retention_days=days))
        print(json.dumps(report.to_dict()))
        return 0 if report.failed_step is None else 2
    if argv[0] == "readers":
        from predicciones.models import ModelVersion
        from predicciones.prediction_log import intervals

        since, until = (dt.datetime.fromisoformat(a) for a in argv[1:3])
        version = ModelVersion.objects.get(version=1)
        intervals.PARALLEL_MIN_SPAN = dt.timedelta(0)  # split whatever the span
        two, one = (
            intervals.prediction_interval_summary(version, since, until, readers=k).to_dict()
            for k in (2, 1)
        )
        print(json.dumps({"equal": two == one, "n": one["n"]}))
        return 0
    if argv[0] == "compare":
        from predicciones.services.drift import drift_report_create

        since, until = (dt.datetime.fromisoformat(a) for a in argv[1:3])
        reports = [
            drift_report_create(since=since, until=until, save=False, use_summaries=use)
            for use in (True, False)
        ]
        run_fields = {"report_uid", "created_at", "store_key", "sources"}
        data = [{k: v for k, v in r.document.items() if k not in run_fields} for r in reports]
        print(
            json.dumps(
                {
                    "equal": data[0] == data[1],
                    "n": reports[1].n_current,
                    "sources": reports[0].document["sources"],
                }
            )
        )
        return 0
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
