"""Prometheus metrics: what every request and prediction adds, and what a scrape reads.

Counters and histograms are updated by ``RequestContextMiddleware`` as each request ends.
Under gunicorn they live in prometheus_client's multiprocess mode: each worker writes its
values to files in ``PROMETHEUS_MULTIPROC_DIR`` (gunicorn.conf.py creates and cleans it),
and ``GET /metrics`` sums every worker's files, so a scrape answered by any one worker
counts the requests all workers served. Gauges that describe shared state (feedback
accuracy, which version is live, drift) are computed from the database at scrape time by
the collectors below instead of being kept per process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from http import HTTPStatus

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.http import require_safe
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from rest_framework import status

from .exception_handler import error_response
from .security import (
    auth_failure_wait,
    bearer_challenge,
    bearer_token_valid,
    record_auth_failure,
)

logger = logging.getLogger(__name__)

#: Whole-request durations (seconds): a prediction takes milliseconds, an upload can take more.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Model-side durations (seconds): decode + preprocess + predict.
MODEL_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)

#: Severity words a drift report may use, in increasing order (for the numeric gauge).
HTTP_REQUESTS = Counter(
    "digits_http_requests",
    "HTTP requests answered, by endpoint (route name), method and status code.",
    ["endpoint", "method", "status"],
)
HTTP_DURATION = Histogram(
    "digits_http_request_duration_seconds",
    "Whole-request time inside Django, by endpoint (route name).",
    ["endpoint"],
    buckets=REQUEST_BUCKETS,
)
PREDICTIONS = Counter(
    "digits_predictions",
    "Answered predictions, by model, version and predicted digit.",
    ["model", "version", "digit"],
)
PREDICTION_MODEL_SECONDS = Histogram(
    "digits_prediction_model_seconds",
    "Model-side time of a prediction (decode, preprocess, predict), by model and version.",
    ["model", "version"],
    buckets=MODEL_BUCKETS,
)
PREDICTION_REQUEST_SECONDS = Histogram(
    "digits_prediction_request_seconds",
    "Whole-request time of an answered prediction (upload parsing and log write included).",
    ["model", "version"],
    buckets=REQUEST_BUCKETS,
)
PREDICTION_CONFIDENCE = Histogram(
    "digits_prediction_confidence",
    "Confidence (top class probability) of answered predictions, by model and version.",
    ["model", "version"],
    buckets=CONFIDENCE_BUCKETS,
)


#: The methods counted by name (RFC 9110's, and PATCH); any other is counted as "other". A
#: label value is a new series in every worker's file and every scrape, for good: the client
#: must never choose one.
HTTP_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
#: Status codes counted by number (the registered ones); any other by its class ("5xx").
HTTP_STATUS_CODES = frozenset(int(code) for code in HTTPStatus)


def method_label(method: str) -> str:
    return method if method in HTTP_METHODS else "other"


def status_label(status_code: int) -> str:
    if status_code in HTTP_STATUS_CODES:
        return str(status_code)
    return f"{status_code // 100}xx" if 100 <= status_code < 600 else "other"


# -- recording (called by the middleware) ------------------------------------------------------
def record_request(*, endpoint: str, method: str, status_code: int, seconds: float) -> None:
    """Count one answered request. ``endpoint`` is a route name or "unmatched" (a fixed set);
    the method and status are mapped onto fixed sets here."""
    HTTP_REQUESTS.labels(endpoint, method_label(method), status_label(status_code)).inc()
    HTTP_DURATION.labels(endpoint).observe(seconds)


def record_prediction(
    *,
    model: str,
    version: int,
    digit: int,
    confidence: float,
    model_seconds: float,
    request_seconds: float,
) -> None:
    labels = (model, str(version))
    PREDICTIONS.labels(*labels, str(digit)).inc()
    PREDICTION_MODEL_SECONDS.labels(*labels).observe(model_seconds)
    PREDICTION_REQUEST_SECONDS.labels(*labels).observe(request_seconds)
    PREDICTION_CONFIDENCE.labels(*labels).observe(confidence)


# -- scrape-time collectors ------------------------------------------------------------------------
class _Source:
    """A scrape-time source of gauge families; ``families()`` may fail (database down...)."""

    name = "base"

    def families(self) -> Iterable:
        raise NotImplementedError


class ScrapeTimeCollector:
    """Runs each source at scrape time. A failing source costs its own series, not the
    scrape, and shows as ``digits_metrics_collector_up{collector=...} 0``."""

    def __init__(self, sources: list[_Source]):
        self.sources = sources

    def collect(self):
        up = GaugeMetricFamily(
            "digits_metrics_collector_up",
            "1 when a scrape-time collector read its source, 0 when it failed.",
            labels=["collector"],
        )
        for source in self.sources:
            try:
                families = list(source.families())
            except Exception:  # the scrape must still answer with everything else
                logger.exception("metrics collector %s failed", source.name)
                up.add_metric([source.name], 0)
                continue
            up.add_metric([source.name], 1)
            yield from families
        yield up


class FeedbackGauges(_Source):
    """Accuracy where true labels exist: labelled and correct predictions per model version."""

    name = "feedback"

    def families(self):
        from . import selectors

        labels = ["model", "version"]
        labelled = GaugeMetricFamily(
            "digits_feedback_labelled_predictions",
            "Logged predictions that have a true label (POST /feedback/).",
            labels=labels,
        )
        correct = GaugeMetricFamily(
            "digits_feedback_correct_predictions",
            "Labelled predictions whose prediction equals the label.",
            labels=labels,
        )
        accuracy = GaugeMetricFamily(
            "digits_feedback_accuracy",
            "correct / labelled, per model version (only where labels exist).",
            labels=labels,
        )
        for row in selectors.feedback_count_per_version():
            key = [row["model"], str(row["version"])]
            labelled.add_metric(key, row["labelled"])
            correct.add_metric(key, row["correct"])
            accuracy.add_metric(key, row["correct"] / row["labelled"])
        return [labelled, correct, accuracy]


class DeploymentGauges(_Source):
    """Which version of each model is live, and the candidate's share of traffic."""

    name = "deployments"

    def families(self):
        from . import selectors

        live = GaugeMetricFamily(
            "digits_model_live_version", "Live version number per model.", labels=["model"]
        )
        candidate = GaugeMetricFamily(
            "digits_model_candidate_version",
            "Candidate version number per model (0 when there is none).",
            labels=["model"],
        )
        share = GaugeMetricFamily(
            "digits_model_candidate_percent",
            "Share of routed traffic the candidate answers (0..99).",
            labels=["model"],
        )
        for dep in selectors.deployment_list():
            name = [dep.model.name]
            live.add_metric(name, dep.live.version)
            candidate.add_metric(name, dep.candidate.version if dep.candidate_id else 0)
            share.add_metric(name, dep.candidate_percent)
        return [live, candidate, share]


class DriftGauges(_Source):
    """Drift gauges from the latest report of every model, read at scrape time."""

    name = "drift"

    def families(self):
        from . import selectors

        labels = ["model", "version"]
        score = GaugeMetricFamily(
            "digits_drift_score", "Overall drift score of the latest report.", labels=labels
        )
        level = GaugeMetricFamily(
            "digits_drift_severity_level",
            "Severity of the latest report: 0 none, 1 warning, 2 critical.",
            labels=labels,
        )
        info = GaugeMetricFamily(
            "digits_drift_report_info",
            "Always 1; the labels carry the latest report's severity and status.",
            labels=[*labels, "severity", "status"],
        )
        share = GaugeMetricFamily(
            "digits_drift_drifted_share",
            "Share of the 64 pixels drifted in the latest report.",
            labels=labels,
        )
        samples = GaugeMetricFamily(
            "digits_drift_live_samples", "Live samples behind the latest report.", labels=labels
        )
        created = GaugeMetricFamily(
            "digits_drift_report_timestamp_seconds",
            "When the latest report was made (Unix time).",
            labels=labels,
        )
        features = GaugeMetricFamily(
            "digits_drift_feature_score",
            "Per-pixel normalised drift score (feature 0..63, row-major 8x8), latest report.",
            labels=[*labels, "feature"],
        )
        for report in selectors.drift_report_latest_per_model():
            key = [report.model, str(report.version)]
            if report.score is not None:
                score.add_metric(key, report.score)
            if report.drifted_share is not None:
                share.add_metric(key, report.drifted_share)
            level.add_metric(key, report.severity_code)
            info.add_metric([*key, report.severity, report.status], 1)
            samples.add_metric(key, report.n_current)
            created.add_metric(key, report.created_at.timestamp())
            for index, value in enumerate(report.feature_scores):
                if value is not None:
                    features.add_metric([*key, str(index)], value)
        return [score, level, info, share, samples, created, features]


class StoreGauges(_Source):
    """Whether the artifact store answers (probed at most every few seconds, see
    ``readiness.store_state``). It does not fail readiness, so it is watched here."""

    name = "artifact_store"

    def families(self):
        from .readiness import store_state

        up = GaugeMetricFamily(
            "digits_artifact_store_up",
            "1 when the artifact store answered its last probe, 0 when it did not.",
        )
        up.add_metric([], 1 if store_state() == "ok" else 0)
        return [up]


class _ProcessRegistryCollector:
    """Single-process mode (runserver, tests): this process's own metrics."""

    def collect(self):
        return REGISTRY.collect()


def scrape_registry() -> CollectorRegistry:
    """A registry for one scrape: every worker's counters plus the scrape-time gauges."""
    registry = CollectorRegistry(auto_describe=False)
    if settings.PROMETHEUS_MULTIPROC_DIR:
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ProcessRegistryCollector())
    registry.register(
        ScrapeTimeCollector([FeedbackGauges(), DeploymentGauges(), DriftGauges(), StoreGauges()])
    )
    return registry


@require_safe
def metrics_view(request):
    """``GET /metrics``: Prometheus text format; ``Authorization: Bearer`` when a token is set."""
    expected = settings.DIGITS_METRICS_TOKEN
    wait = auth_failure_wait(request) if expected else None
    if wait is not None:
        response = error_response(request, status.HTTP_429_TOO_MANY_REQUESTS)
        response["Retry-After"] = str(int(wait) + 1)
        return response
    if expected and not bearer_token_valid(request, expected):
        record_auth_failure(request)
        response = error_response(
            request,
            status.HTTP_401_UNAUTHORIZED,
            "Send 'Authorization: Bearer <DIGITS_METRICS_TOKEN>' to read the metrics.",
        )
        response["WWW-Authenticate"] = bearer_challenge("metrics")
        return response
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
