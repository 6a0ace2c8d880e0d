"""Operator options resolved in one place: the value given (a command's option), else its
setting, then its range checked, every refusal in one format::

    --min-samples (or DIGITS_RETRAIN_MIN_SAMPLES) must be >= 0, got -1

Each record below is what one action runs with (a retrain, a pass of the pipeline, a canary
review, a drift check, the log's maintenance), resolved and checked before the action reads,
trains or records anything. A refusal is an :class:`OperatorError` (commands exit 2 with it).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace

from django.conf import settings

from .exceptions import OperatorError
from .ml.drift import DriftThresholds

#: How the pipeline rolls a gated candidate out.
STRATEGIES = ("canary", "bluegreen")
#: Rows retention deletes per transaction by default, and at most (SQLite takes at most
#: 32,766 parameters a statement).
DELETE_BATCH = 5_000
MAX_DELETE_BATCH = 20_000


def resolve(
    value,
    option: str | None,
    setting: str | None,
    low: float,
    high: float | None = None,
    *,
    whole: bool = False,
    above: bool = False,
):
    """``value``, or the setting named ``setting`` when ``value`` is None, checked by
    :func:`check_range`."""
    if value is None and setting is not None:
        value = getattr(settings, setting)
    check_range(option, setting, value, low, high, whole=whole, above=above)
    return value


def check_range(
    option: str | None,
    setting: str | None,
    value,
    low: float,
    high: float | None = None,
    *,
    whole: bool = False,
    above: bool = False,
) -> None:
    """OperatorError, naming the option (and the setting it falls back to), unless ``value``
    is a finite number from ``low`` (excluded with ``above``) to ``high`` (a whole one with
    ``whole``)."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    ok = (
        number
        and math.isfinite(value)
        and (value > low if above else value >= low)
        and (high is None or value <= high)
        and (not whole or int(value) == value)
    )
    if ok:
        return
    where = f"{option} (or {setting})" if option and setting else (option or setting)
    kind = "a whole number " if whole else ""
    if high is not None:
        bounds = f"above {low:g} and at most {high:g}" if above else f"from {low:g} to {high:g}"
    else:
        bounds = f"> {low:g}" if above else f">= {low:g}"
    raise OperatorError(f"{where} must be {kind}{bounds}, got {value}")


# --- Retraining and the pipeline ------------------------------------------------------------------
@dataclass
class RetrainOptions:
    """What ``retrain`` (and the pipeline's retrain step) runs with; None: the setting."""

    seed: int = 0
    min_samples: int | None = None
    cooldown_hours: float | None = None
    min_improvement: float | None = None
    max_class_drop: float | None = None
    dry_run: bool = False
    trigger: str = "manual"
    quick: bool = False
    source_cap: int | None = None

    def resolved(self) -> RetrainOptions:
        """Every unset value from its setting, every value range-checked."""
        return replace(
            self,
            seed=resolve(self.seed, "--seed", None, 0, 2**32 - 1, whole=True),
            min_samples=resolve(
                self.min_samples, "--min-samples", "DIGITS_RETRAIN_MIN_SAMPLES", 0, whole=True
            ),
            cooldown_hours=resolve(
                self.cooldown_hours, "--cooldown-hours", "DIGITS_RETRAIN_COOLDOWN_HOURS", 0
            ),
            min_improvement=resolve(
                self.min_improvement, "--min-improvement", "DIGITS_GATE_MIN_IMPROVEMENT", 0, 1
            ),
            max_class_drop=resolve(
                self.max_class_drop, "--max-class-drop", "DIGITS_GATE_MAX_CLASS_DROP", 0, 1
            ),
            source_cap=resolve(self.source_cap, None, "DIGITS_FEEDBACK_SOURCE_CAP", 0, whole=True),
        )


@dataclass
class PipelineOptions:
    """What one pass of ``run_pipeline`` runs with; None: the setting."""

    retrain: RetrainOptions = field(default_factory=RetrainOptions)
    min_samples_without_drift: int | None = None
    strategy: str = "canary"
    canary_percent: int | None = None
    canary_min_requests: int | None = None
    drift_last: int | None = None
    dry_run: bool = False

    def resolved(self) -> PipelineOptions:
        """Every unset value from its setting, every value checked, the retrain's first."""
        if self.strategy not in STRATEGIES:
            raise OperatorError(f"--strategy must be one of {', '.join(STRATEGIES)}")
        percent = (self.canary_percent, "--canary-percent", "DIGITS_CANARY_PERCENT")
        return replace(
            self,
            retrain=replace(self.retrain.resolved(), dry_run=self.dry_run),
            min_samples_without_drift=resolve(
                self.min_samples_without_drift,
                "--min-samples-without-drift",
                "DIGITS_RETRAIN_MIN_SAMPLES_WITHOUT_DRIFT",
                0,
                whole=True,
            ),
            # 0 % would be a standby that no review ever decides: that is --strategy bluegreen.
            canary_percent=(
                resolve(*percent, 1, 99, whole=True)
                if self.strategy == "canary"
                else resolve(*percent, 0, 99, whole=True)
            ),
            canary_min_requests=canary_min_requests(self.canary_min_requests),
            drift_last=drift_window(self.drift_last),
        )


def canary_min_requests(value: int | None, option: str = "--canary-min-requests") -> int:
    """Candidate requests a canary review needs before it decides."""
    return resolve(value, option, "DIGITS_CANARY_MIN_REQUESTS", 1, whole=True)


# --- Drift checks ------------------------------------------------------------------------------
def drift_window(last: int | None) -> int:
    """A ``--last`` window: that many of the version's latest predictions."""
    return resolve(last, "--last", "DIGITS_DRIFT_WINDOW", 1, whole=True)


def drift_thresholds(
    *,
    feature: float | None = None,
    warning_share: float | None = None,
    critical_share: float | None = None,
    min_samples: int | None = None,
) -> DriftThresholds:
    """The thresholds of a drift decision (``DIGITS_DRIFT_*`` for those not given)."""
    warning = resolve(
        warning_share, "--warning-share", "DIGITS_DRIFT_WARNING_SHARE", 0, 1, above=True
    )
    critical = resolve(
        critical_share, "--critical-share", "DIGITS_DRIFT_CRITICAL_SHARE", 0, 1, above=True
    )
    if warning > critical:
        raise OperatorError(
            "--warning-share (or DIGITS_DRIFT_WARNING_SHARE) and --critical-share (or "
            f"DIGITS_DRIFT_CRITICAL_SHARE) must be warning <= critical, got {warning} > {critical}"
        )
    return DriftThresholds(
        feature=resolve(
            feature, "--feature-threshold", "DIGITS_DRIFT_FEATURE_THRESHOLD", 0, above=True
        ),
        warning_share=warning,
        critical_share=critical,
        min_samples=resolve(
            min_samples, "--min-samples", "DIGITS_DRIFT_MIN_SAMPLES", 1, whole=True
        ),
    )


# --- The prediction log's maintenance ----------------------------------------------------------
@dataclass(frozen=True)
class LifecycleSettings:
    """What ``maintain`` runs with: retention, the grace before an hour is closed, how many
    hours a step may handle in one run (None: all), rows deleted per transaction."""

    retention_days: int
    grace: dt.timedelta
    max_hours: int | None
    delete_batch: int

    def reached(self, done: int) -> bool:
        """Whether a step that has handled ``done`` hours must leave the rest to the next run."""
        return self.max_hours is not None and done >= self.max_hours


def lifecycle_settings(
    *,
    retention_days: int | None = None,
    grace_seconds: int | None = None,
    max_hours: int | None = None,
    delete_batch: int | None = None,
) -> LifecycleSettings:
    """The ``DIGITS_LOG_*`` settings, any given value first."""
    days = resolve(retention_days, "--retention-days", "DIGITS_LOG_RETENTION_DAYS", 1, whole=True)
    grace = resolve(grace_seconds, "--grace-seconds", "DIGITS_LOG_GRACE_SECONDS", 0, whole=True)
    if max_hours is not None:
        check_range("--max-hours", None, max_hours, 1, whole=True)
    batch = DELETE_BATCH if delete_batch is None else delete_batch
    check_range("--batch-rows", None, batch, 1, MAX_DELETE_BATCH, whole=True)
    return LifecycleSettings(
        retention_days=int(days),
        grace=dt.timedelta(seconds=int(grace)),
        max_hours=max_hours,
        delete_batch=batch,
    )
