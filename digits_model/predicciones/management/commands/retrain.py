"""Retrain a model on the base digits plus labelled feedback, behind the validation gate.

Safe to run from cron: it trains only with enough new labels and outside the cooldown,
registers the candidate only if it beats the live version on the fixed validation set, and
never changes what is live (run_pipeline or an operator rolls it out). Every attempt that
trains is recorded, refusals with their reasons.
"""

from django.conf import settings

from predicciones.management.base import (
    OperatorCommand,
    fraction,
    non_negative_float,
    non_negative_int,
    random_seed,
)
from predicciones.services.retraining import RetrainOptions, model_retrain


def add_retrain_arguments(parser) -> None:
    """The options retrain shares with run_pipeline."""
    parser.add_argument("--model", default=None, help="Model name (default: the default).")
    parser.add_argument("--seed", type=random_seed, default=0, help="Random seed (default 0).")
    parser.add_argument("--min-samples", type=non_negative_int, help="New labels required.")
    parser.add_argument(
        "--cooldown-hours", type=non_negative_float, help="Hours since the last retrain (0: none)."
    )
    parser.add_argument(
        "--min-improvement", type=fraction, help="Accuracy gain required (0.005: half a point)."
    )
    parser.add_argument(
        "--max-class-drop", type=fraction, help="Largest recall loss of one digit (0..1)."
    )
    parser.add_argument("--quick", action="store_true", help="Fewer augmentations (tests).")
    parser.add_argument("--dry-run", action="store_true", help="Decide, change nothing.")
    parser.add_argument("--json", action="store_true")


def retrain_options(opts: dict, **extra) -> RetrainOptions:
    """RetrainOptions from parsed command options (unset ones fall back to settings)."""
    return RetrainOptions(
        seed=opts["seed"],
        min_samples=opts["min_samples"],
        cooldown_hours=opts["cooldown_hours"],
        min_improvement=opts["min_improvement"],
        max_class_drop=opts["max_class_drop"],
        quick=opts["quick"],
        **extra,
    )


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
