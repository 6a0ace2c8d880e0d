"""Retrain a model on the base digits plus labelled feedback, behind the validation gate.

Safe to run from cron: it trains only with enough new labels and outside the cooldown,
registers the candidate only if it beats the live version on the fixed validation set, and
never changes what is live (run_pipeline or an operator rolls it out). Every attempt that
trains is recorded, refusals with their reasons.
"""

from django.conf import settings

from predicciones.management.base import OperatorCommand
from predicciones.management.retrain_options import add_retrain_arguments, retrain_options
from predicciones.services.retraining import model_retrain


class Command(OperatorCommand):
    help = "Train a candidate from base data + feedback; register it only if it passes the gate."

    def add_arguments(self, parser):
        add_retrain_arguments(parser)

    def handle(self, *args, **opts):
        run = model_retrain(
            model_name=opts["model"] or settings.DIGITS_DEFAULT_MODEL,
            options=retrain_options(opts, dry_run=opts["dry_run"]),
        )
        if opts["json"]:
            self.write_json(run.as_dict())
            return
        style = self.style.SUCCESS if run.status == "registered" else self.style.WARNING
        self.stdout.write(style(f"retrain {run.status}"))
        for reason in run.reasons:
            self.stdout.write(f"  - {reason}")
        if run.gate:
            live, cand = run.gate["live"], run.gate["candidate"]
            self.stdout.write(
                f"  validation set {run.validation_set}: live {live['accuracy']:.4f}, "
                f"candidate {cand['accuracy']:.4f} on {cand['n']} rows"
            )
