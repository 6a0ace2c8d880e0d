"""One pass of the drift -> retrain -> gate -> rollout pipeline, for cron.

Reviews a running canary first; then checks drift, retrains only with enough new labels
(fewer when drift was found) and outside the cooldown, and starts a canary (or a blue/green
switch) for a candidate that passed the validation gate. Exit codes as check_drift: 0 ran,
1 drift found with --fail-on-drift, 2 could not run.
"""

from django.conf import settings
from django.core.management.base import CommandError

from predicciones.management.base import OperatorCommand
from predicciones.management.commands.retrain import add_retrain_arguments, retrain_options
from predicciones.services.pipeline import STRATEGIES, PipelineOptions, pipeline_run


class Command(OperatorCommand):
    help = "Review canary, check drift, retrain behind the gate, roll the winner out."

    def add_arguments(self, parser):
        add_retrain_arguments(parser)  # --min-samples: new labels needed when drift is found
        parser.add_argument(
            "--min-samples-without-drift", type=int, help="New labels needed without drift."
        )
        parser.add_argument("--strategy", choices=STRATEGIES, default="canary")
        parser.add_argument("--canary-percent", type=int)
        parser.add_argument("--canary-min-requests", type=int)
        parser.add_argument("--last", type=int, help="Drift window: the last N predictions.")
        parser.add_argument("--fail-on-drift", action="store_true")

    def handle(self, *args, **opts):
        summary = pipeline_run(
            model_name=opts["model"] or settings.DIGITS_DEFAULT_MODEL,
            options=PipelineOptions(
                retrain=retrain_options(opts),
                min_samples_without_drift=opts["min_samples_without_drift"],
                strategy=opts["strategy"],
                canary_percent=opts["canary_percent"],
                canary_min_requests=opts["canary_min_requests"],
                drift_last=opts["last"],
                dry_run=opts["dry_run"],
            ),
        )
        if opts["json"]:
            self.write_json(summary)
        else:
            self._print(summary)
        if opts["fail_on_drift"] and summary.get("drift", {}).get("status") == "drift":
            raise CommandError("drift found", returncode=1)

    def _print(self, summary: dict) -> None:
        review = summary["canary_review"]
        self.stdout.write(f"canary review: {review['decision']} - {'; '.join(review['reasons'])}")
        if "drift" in summary:
            d = summary["drift"]
            self.stdout.write(
                f"drift: {d['status']} / {d['severity']} (score {d['score']}, "
                f"{d['n_current']} predictions of v{d['version']})"
            )
        decision = summary["decision"]
        self.stdout.write(
            f"retrain: {'yes' if decision['retrain'] else 'no'} - {'; '.join(decision['reasons'])}"
        )
        if "retrain" in summary:
            r = summary["retrain"]
            self.stdout.write(f"  {r['status']}: {'; '.join(r['reasons'])}")
        if "rollout" in summary:
            r = summary["rollout"]
            self.stdout.write(
                self.style.SUCCESS(
                    f"rollout: {r['strategy']} of v{r['version']} at {r['percent']}%"
                )
            )
