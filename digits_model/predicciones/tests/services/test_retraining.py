"""Retraining guards and the canary review, in process (the training itself is end to end)."""

import datetime as dt
import uuid

import numpy as np
import pytest
from django.utils import timezone
from sklearn.datasets import load_digits

from predicciones.models import Deployment, PredictionFailure, RetrainRun
from predicciones.options import RetrainOptions
from predicciones.selectors import cooldown_remaining, feedback_set, new_label_count
from predicciones.services import registry
from predicciones.services.canary_review import canary_review
from predicciones.services.retraining import model_retrain
from predicciones.tests.factories import predictions_log

pytestmark = pytest.mark.django_db

MODEL = "clf.pickle"


@pytest.fixture
def v1():
    return registry.shipped_model_bootstrap()


def labelled(version, n, *, labels=None, start=None):
    X = load_digits().data[:n]
    rows = predictions_log(version, X, start=start)
    labels = load_digits().target[:n] if labels is None else labels
    for row, label in zip(rows, labels, strict=True):
        row.label = int(label)
        row.labelled_at = timezone.now()
        row.save(update_fields=["label", "labelled_at"])
    return rows


def test_bootstrap_does_not_start_a_cooldown(v1):
    assert cooldown_remaining(MODEL, hours=24) is None


def test_too_few_new_labels_skips_and_records_why(v1):
    labelled(v1, 20)
    run = model_retrain(model_name=MODEL, options=RetrainOptions(min_samples=50, cooldown_hours=0))
    assert run.status == "skipped" and run.pk is not None
    assert run.reasons == ["not enough new labelled samples: 20 < 50"]
    assert Deployment.objects.get().live == v1


def test_dry_run_checks_guards_and_records_nothing(v1):
    labelled(v1, 60)
    run = model_retrain(
        model_name=MODEL, options=RetrainOptions(min_samples=50, cooldown_hours=0, dry_run=True)
    )
    assert run.status == "skipped" and run.reasons == ["dry run: nothing trained or registered"]
    assert not RetrainRun.objects.exists()


def test_cooldown_counts_from_the_last_run_that_trained(v1):
    RetrainRun.objects.create(
        model=v1.model, started_at=timezone.now() - dt.timedelta(hours=2), status="refused"
    )
    RetrainRun.objects.create(model=v1.model, started_at=timezone.now(), status="skipped")
    remaining = cooldown_remaining(MODEL, hours=24)
    assert dt.timedelta(hours=21.9) < remaining < dt.timedelta(hours=22.1)
    labelled(v1, 60)
    run = model_retrain(model_name=MODEL, options=RetrainOptions(min_samples=10, cooldown_hours=24))
    assert run.status == "skipped" and run.reasons[0].startswith("cooldown")
    assert cooldown_remaining(MODEL, hours=1) is None


def test_new_labels_are_counted_since_the_last_retrain(v1):
    labelled(v1, 30)
    assert new_label_count(MODEL) == 30
    RetrainRun.objects.create(model=v1.model, started_at=timezone.now(), status="refused")
    assert new_label_count(MODEL) == 0
    labelled(v1, 5)
    assert new_label_count(MODEL) == 5


def test_feedback_holdout_rows_never_reach_training(v1):
    labelled(v1, 200)
    first = feedback_set(MODEL, holdout_percent=20)
    assert first.n_train + first.n_validation == 200
    assert 20 <= first.n_validation <= 60
    again = feedback_set(MODEL, holdout_percent=20)
    assert again.validation_ids == first.validation_ids
    assert first.X_train.shape == (first.n_train, 64)


def served(version, X, **kwargs):
    """Predictions answered by ``version`` after the canary started (now onwards)."""
    return predictions_log(version, X, start=timezone.now(), **kwargs)


@pytest.fixture
def canary(v1):
    from sklearn.linear_model import LogisticRegression

    from predicciones.ml.classifier import dump_classifier

    X, y = load_digits(return_X_y=True)
    v2 = registry.model_version_register(
        name=MODEL,
        artifact=dump_classifier(LogisticRegression(max_iter=300).fit(X[:500], y[:500])),
        statistics={},
        metrics={},
        sklearn_version="test",
    )
    registry.deployment_set_candidate(name=MODEL, version=2, percent=20)
    return v1, v2


def test_canary_waits_for_enough_traffic(canary):
    _, v2 = canary
    served(v2, load_digits().data[:10])
    review = canary_review(model_name=MODEL, min_requests=50)
    assert review.decision == "wait" and not review.applied
    assert Deployment.objects.get().candidate == v2


def test_a_healthy_canary_is_promoted(canary):
    v1, v2 = canary
    served(v1, load_digits().data[:200])
    served(v2, load_digits().data[:60])
    review = canary_review(model_name=MODEL, min_requests=50)
    assert review.decision == "promote" and review.applied
    dep = Deployment.objects.get()
    assert (dep.live, dep.candidate, dep.previous_live) == (v2, None, v1)


def test_a_failing_canary_is_rolled_back(canary):
    v1, v2 = canary
    served(v1, load_digits().data[:200])
    served(v2, load_digits().data[:60])
    for _ in range(5):
        PredictionFailure.objects.create(
            query_id=uuid.uuid4(), created_at=timezone.now(), model_version=v2, error="ValueError"
        )
    review = canary_review(model_name=MODEL, min_requests=50)
    assert review.decision == "rollback" and "error rate" in review.reasons[0]
    dep = Deployment.objects.get()
    assert (dep.live, dep.candidate) == (v1, None)


def test_a_canary_that_reads_worse_is_rolled_back(canary):
    v1, v2 = canary
    digits = load_digits()
    X, truth = digits.data[:100], digits.target[:100]
    wrong_every_fourth = np.where(np.arange(100) % 4 == 0, (truth + 1) % 10, truth)
    rows = served(v1, X, predictions=truth) + served(v2, X, predictions=wrong_every_fourth)
    for row, label in zip(rows, np.concatenate([truth, truth]), strict=True):
        row.label = int(label)
        row.save(update_fields=["label"])
    review = canary_review(model_name=MODEL, min_requests=50, apply=False)
    assert review.decision == "rollback"
    assert review.candidate.accuracy == pytest.approx(0.75) and review.live.accuracy == 1.0
    assert any("live accuracy" in reason for reason in review.reasons)
    assert Deployment.objects.get().candidate == v2  # decided, not applied


def test_no_canary_means_nothing_to_review(v1):
    assert canary_review(model_name=MODEL).decision == "none"


def test_a_review_acts_only_on_the_candidate_it_judged(canary, monkeypatch):
    """An operator swaps in another candidate while the review reads the traffic: the
    promote it decided on v2's numbers must not promote v3."""
    from sklearn.linear_model import LogisticRegression

    from predicciones.ml.classifier import dump_classifier
    from predicciones.services import canary_review as canary_module

    v1, v2 = canary
    served(v1, load_digits().data[:200])
    served(v2, load_digits().data[:60])
    X, y = load_digits(return_X_y=True)
    registry.model_version_register(
        name=MODEL,
        artifact=dump_classifier(LogisticRegression(max_iter=300).fit(X[500:900], y[500:900])),
        statistics={},
        metrics={},
        sklearn_version="test",
    )
    real_traffic = canary_module.version_traffic
    swapped = []

    def traffic_then_swap(*args, **kwargs):
        if not swapped:  # between the review's read of the deployment and its action
            registry.deployment_set_candidate(name=MODEL, version=3, percent=20, actor="op")
            swapped.append(True)
        return real_traffic(*args, **kwargs)

    monkeypatch.setattr(canary_module, "version_traffic", traffic_then_swap)
    review = canary_review(model_name=MODEL, min_requests=50)
    assert swapped
    assert review.decision == "wait" and not review.applied
    assert "changed since it was reviewed" in review.reasons[0]
    dep = Deployment.objects.get()
    assert (dep.live, dep.candidate.version, dep.candidate_percent) == (v1, 3, 20)


def test_the_registry_refuses_a_decision_made_on_another_state(canary):
    v1, v2 = canary
    stale = registry.DeploymentState(live_id=v1.pk, candidate_id=v1.pk)
    with pytest.raises(registry.DeploymentChangedError):
        registry.deployment_promote(name=MODEL, expect=stale)
    with pytest.raises(registry.DeploymentChangedError):
        registry.deployment_rollback(name=MODEL, expect=stale)
    current = registry.DeploymentState(live_id=v1.pk, candidate_id=v2.pk)
    assert registry.deployment_promote(name=MODEL, expect=current).live == v2


# --- Who gave the labels: what a retrain trains on, what its gate judges on ---------------------
TRUSTED_KEY = "trusted-labeller-key-0123"


def label_from(rows, source):
    for row in rows:
        row.label_source = source
        row.save(update_fields=["label_source"])


def test_the_gate_judges_only_trusted_held_out_labels_and_one_source_is_capped(v1, settings):
    from predicciones.provenance import address_source, key_source, trusted_sources
    from predicciones.services.retraining import feedback_use

    settings.DIGITS_TRUSTED_API_KEYS = [TRUSTED_KEY]
    label_from(labelled(v1, 300), address_source("203.0.113.5"))  # one client, 300 labels
    honest = labelled(v1, 120)
    for i, row in enumerate(honest):  # 40 people, 3 labels each
        label_from([row], address_source(f"198.51.100.{i % 40}"))
    label_from(labelled(v1, 100), key_source(TRUSTED_KEY))
    label_from(labelled(v1, 10), None)  # given before sources were recorded

    feedback = feedback_set(MODEL, holdout_percent=20)
    use = feedback_use(feedback, trusted=trusted_sources(), cap=50)
    trained = [s for s, kept in zip(feedback.train_sources, use.train, strict=True) if kept]
    assert trained.count(address_source("203.0.113.5")) == 50
    assert sum(s.startswith("addr:198.51.100.") for s in trained if s) == sum(
        s.startswith("addr:198.51.100.") for s in feedback.train_sources if s
    )  # the 40 honest people are not capped
    assert trained.count(key_source(TRUSTED_KEY)) == feedback.train_sources.count(
        key_source(TRUSTED_KEY)
    )  # nor the trusted key
    assert trained.count(None) == feedback.train_sources.count(None)  # 10 < 50
    judged = [s for s, j in zip(feedback.validation_sources, use.judged, strict=True) if j]
    assert judged and set(judged) == {key_source(TRUSTED_KEY)}
    assert use.as_dict()["held_out_untrusted"] == len(feedback.validation_sources) - len(judged)
    assert use.trained_trusted + use.trained_untrusted == int(use.train.sum())


def test_without_trusted_keys_no_held_out_label_is_judged(v1):
    from predicciones.provenance import trusted_sources
    from predicciones.services.retraining import feedback_use

    labelled(v1, 200)
    feedback = feedback_set(MODEL, holdout_percent=20)
    use = feedback_use(feedback, trusted=trusted_sources(), cap=50)
    assert feedback.n_validation > 0 and not use.judged.any()
    assert use.train.sum() == 50  # unknown sources are one source


@pytest.fixture
def untrusted_canary(canary):
    v1, v2 = canary
    v2.training_data = {
        "feedback_rows": 80,
        "trusted_feedback_rows": 30,
        "untrusted_feedback_rows": 50,
    }
    v2.save(update_fields=["training_data"])
    served(v1, load_digits().data[:200])
    served(v2, load_digits().data[:60])
    return v1, v2


def test_a_canary_trained_on_untrusted_labels_is_not_promoted_by_the_review(untrusted_canary):
    v1, v2 = untrusted_canary
    review = canary_review(model_name=MODEL, min_requests=50)
    assert review.decision == "wait" and not review.applied
    assert "50 labels from untrusted sources" in review.reasons[0]
    assert "manage.py promote" in review.reasons[0]
    dep = Deployment.objects.get()
    assert (dep.live, dep.candidate) == (v1, v2)


def test_a_worse_untrusted_canary_is_still_rolled_back(untrusted_canary):
    _, v2 = untrusted_canary
    for _ in range(5):
        PredictionFailure.objects.create(
            query_id=uuid.uuid4(), created_at=timezone.now(), model_version=v2, error="ValueError"
        )
    review = canary_review(model_name=MODEL, min_requests=50)
    assert review.decision == "rollback" and review.applied
    assert Deployment.objects.get().candidate is None


def test_a_setting_lets_the_review_promote_an_untrusted_canary(untrusted_canary, settings):
    settings.DIGITS_ROLLOUT_UNTRUSTED_FEEDBACK = True
    review = canary_review(model_name=MODEL, min_requests=50)
    assert review.decision == "promote" and review.applied


def test_versions_trained_before_sources_were_recorded_count_as_untrusted(v1):
    v1.training_data = {"feedback_rows": 12}
    assert v1.untrusted_feedback_rows == 12
    v1.training_data = {"base": "shipped"}
    assert v1.untrusted_feedback_rows == 0
