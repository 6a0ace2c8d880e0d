"""Decide a running canary from live traffic: promote it, roll it back, or keep waiting.

Over the requests each version answered since the canary started, the candidate is
promoted when its error rate, median model-side latency and (where feedback exists) live
accuracy are no worse than the live version's, within set margins; otherwise it is rolled
back. Fewer than ``min_requests`` candidate requests: no decision yet. A candidate trained on
labels from untrusted sources is rolled back when it is worse, but never promoted here
(unless ``DIGITS_ROLLOUT_UNTRUSTED_FEEDBACK``): it waits for an operator.

The decision is applied only to the exact live and candidate versions it was made on,
re-checked once the deployment row is locked: if an operator swapped the candidate in the
meantime, nothing is done and the next review judges the new one on its own traffic.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field

from django.conf import settings

from .. import options, selectors
from ..exceptions import DeploymentChangedError
from ..models import Deployment, DeploymentEvent, Prediction, PredictionFailure
from .registry import DeploymentState, deployment_promote, deployment_rollback

#: Latency samples per version used for the median (the most recent ones).
LATENCY_SAMPLE = 20_000
#: Labelled requests each version needs before live accuracy is compared.
MIN_LABELS = 30


@dataclass
class VersionTraffic:
    version: int
    requests: int
    failures: int
    error_rate: float
    median_latency_ms: float | None
    mean_confidence: float | None
    labelled: int
    accuracy: float | None


@dataclass
class CanaryReview:
    model: str
    decision: str  # "promote", "rollback", "wait", "none"
    reasons: list[str] = field(default_factory=list)
    candidate: VersionTraffic | None = None
    live: VersionTraffic | None = None
    applied: bool = False

    def as_dict(self) -> dict:
        return asdict(self)

    def sentence(self) -> str:
        """The review in words, for people (the JSON document has the numbers)."""
        why = "; ".join(self.reasons)
        if self.decision == "none":
            return f"no canary of {self.model} to review ({why})"
        candidate = f"{self.model}:{self.candidate.version}"
        if self.decision == "wait":
            return f"canary {candidate} not decided yet ({why})"
        verb = "promoted" if self.decision == "promote" else "rolled back"
        if not self.applied:
            verb = f"would be {verb} (dry run)"
        return f"canary {candidate} {verb}: {why}"


def version_traffic(version_id: int, version: int, since) -> VersionTraffic:
    rows = Prediction.objects.filter(model_version_id=version_id, created_at__gte=since)
    requests = rows.count()
    failures = PredictionFailure.objects.filter(
        model_version_id=version_id, created_at__gte=since
    ).count()
    latencies = list(
        rows.order_by("-created_at").values_list("latency_ms", flat=True)[:LATENCY_SAMPLE]
    )
    confidences = list(
        rows.order_by("-created_at").values_list("confidence", flat=True)[:LATENCY_SAMPLE]
    )
    labelled = rows.filter(label__isnull=False)
    n_labelled = labelled.count()
    correct = sum(1 for p, t in labelled.values_list("prediction", "label") if p == t)
    total = requests + failures
    return VersionTraffic(
        version=version,
        requests=requests,
        failures=failures,
        error_rate=failures / total if total else 0.0,
        median_latency_ms=statistics.median(latencies) if latencies else None,
        mean_confidence=statistics.fmean(confidences) if confidences else None,
        labelled=n_labelled,
        accuracy=correct / n_labelled if n_labelled else None,
    )


def canary_review(
    *,
    model_name: str,
    min_requests: int | None = None,
    max_latency_ratio: float = 1.5,
    max_error_rate_increase: float = 0.01,
    max_accuracy_drop: float = 0.02,
    apply: bool = True,
    actor: str = "canary_review",
) -> CanaryReview:
    """Review ``model_name``'s running canary and (when ``apply``) act on the decision."""
    min_requests = options.canary_min_requests(min_requests, "--min-requests")
    selectors.model_get(name=model_name)
    dep = (
        Deployment.objects.select_related("live", "candidate")
        .filter(model__name=model_name)
        .first()
    )
    if dep is None or dep.candidate is None or dep.candidate_percent == 0:
        return CanaryReview(model=model_name, decision="none", reasons=["no canary running"])
    reviewed = DeploymentState.of(dep)
    started = _canary_started(dep)
    candidate = version_traffic(dep.candidate_id, dep.candidate.version, started)
    live = version_traffic(dep.live_id, dep.live.version, started)
    review = CanaryReview(model=model_name, decision="wait", candidate=candidate, live=live)
    if candidate.requests < min_requests:
        review.reasons.append(
            f"candidate answered {candidate.requests} requests; {min_requests} needed to decide"
        )
        return review
    problems = _problems(
        candidate,
        live,
        max_latency_ratio=max_latency_ratio,
        max_error_rate_increase=max_error_rate_increase,
        max_accuracy_drop=max_accuracy_drop,
    )
    _decide(review, problems, dep.candidate)
    if apply and review.decision in ("promote", "rollback"):
        _apply(review, model_name=model_name, actor=actor, expect=reviewed)
    return review


def _canary_started(dep: Deployment):
    """When the running canary started (its latest ``canary`` event)."""
    return (
        DeploymentEvent.objects.filter(
            model=dep.model_id, action=DeploymentEvent.Action.CANARY, version=dep.candidate
        )
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )


def _problems(
    candidate: VersionTraffic,
    live: VersionTraffic,
    *,
    max_latency_ratio: float,
    max_error_rate_increase: float,
    max_accuracy_drop: float,
) -> list[str]:
    """How the candidate's traffic is worse than the live version's, beyond the margins."""
    problems = []
    if candidate.error_rate > live.error_rate + max_error_rate_increase:
        problems.append(f"error rate {candidate.error_rate:.3%} vs live {live.error_rate:.3%}")
    if (
        candidate.median_latency_ms is not None
        and live.median_latency_ms is not None
        and candidate.median_latency_ms > max_latency_ratio * live.median_latency_ms + 1.0
    ):
        problems.append(
            f"median latency {candidate.median_latency_ms:.2f} ms vs live "
            f"{live.median_latency_ms:.2f} ms"
        )
    if (
        candidate.labelled >= MIN_LABELS
        and live.labelled >= MIN_LABELS
        and candidate.accuracy < live.accuracy - max_accuracy_drop
    ):
        problems.append(
            f"live accuracy {candidate.accuracy:.3f} vs {live.accuracy:.3f} on labelled traffic"
        )
    return problems


def _decide(review: CanaryReview, problems: list[str], candidate_version) -> None:
    """Roll back a worse candidate; promote one no worse, unless what it learnt came partly
    from untrusted labels (then a person decides: the review waits)."""
    candidate = review.candidate
    if problems:
        review.decision, review.reasons = "rollback", problems
    elif (
        candidate_version.untrusted_feedback_rows and not settings.DIGITS_ROLLOUT_UNTRUSTED_FEEDBACK
    ):
        review.reasons = [
            f"no worse than live over {candidate.requests} requests, but trained on "
            f"{candidate_version.untrusted_feedback_rows} labels from untrusted sources: "
            "promote it by hand (manage.py promote) or roll it back"
        ]
    else:
        review.decision = "promote"
        review.reasons = [
            f"over {candidate.requests} requests the candidate is no worse than live "
            "(errors, latency" + (", accuracy)" if candidate.labelled >= MIN_LABELS else ")")
        ]


def _apply(review: CanaryReview, *, model_name: str, actor: str, expect: DeploymentState) -> None:
    """Promote or roll back, only if the deployment is still the one reviewed (else wait)."""
    act = deployment_promote if review.decision == "promote" else deployment_rollback
    try:
        act(name=model_name, actor=actor, reason="; ".join(review.reasons), expect=expect)
    except DeploymentChangedError as exc:
        review.decision = "wait"
        review.reasons = [f"{exc.message}; the next review decides"]
        return
    review.applied = True
