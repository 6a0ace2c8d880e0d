"""The options ``retrain`` and ``run_pipeline`` share, and the RetrainOptions they make."""

from predicciones.management.base import (
    fraction,
    non_negative_float,
    non_negative_int,
    random_seed,
)
from predicciones.options import RetrainOptions


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


#: The retrain options, as both the commands and RetrainOptions name them.
RETRAIN_OPTIONS = (
    "seed",
    "min_samples",
    "cooldown_hours",
    "min_improvement",
    "max_class_drop",
    "quick",
)


def retrain_options(opts: dict, **extra) -> RetrainOptions:
    """RetrainOptions from parsed command options (unset ones fall back to settings)."""
    return RetrainOptions(**{name: opts[name] for name in RETRAIN_OPTIONS}, **extra)
