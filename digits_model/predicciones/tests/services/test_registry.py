"""Registry services: versions, canary, promote, rollback, and what the router serves."""

import uuid

import pytest
from django.conf import settings

from predicciones import storage
from predicciones.exceptions import RegistryError, UnknownModelError
from predicciones.ml.classifier import dump_classifier
from predicciones.models import Deployment, DeploymentEvent, ModelVersion
from predicciones.services import registry
from predicciones.serving import Router, canary_bucket

pytestmark = pytest.mark.django_db


@pytest.fixture
def v1():
    version = registry.shipped_model_bootstrap()
    assert version is not None
    return version


@pytest.fixture
def tiny_artifact():
    """A different, real classifier (trained on a slice of the digits) as pickle bytes."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    X, y = load_digits(return_X_y=True)
    return dump_classifier(LogisticRegression(max_iter=300).fit(X[:400], y[:400]))


def register(artifact, **kwargs):
    return registry.model_version_register(
        name=settings.DIGITS_DEFAULT_MODEL,
        artifact=artifact,
        statistics={"n_samples": 0},
        metrics={"accuracy": 0.5},
        sklearn_version="test",
        created_by="test",
        **kwargs,
    )


def test_bootstrap_registers_shipped_model_live_once(v1):
    assert v1.version == 1
    assert Deployment.objects.get(model=v1.model).live == v1
    assert registry.shipped_model_bootstrap() is None
    assert ModelVersion.objects.count() == 1
    assert storage.get_store().exists(v1.artifact_key)
    assert storage.get_store().exists(v1.stats_key)


def test_new_versions_are_numbered_and_not_live(v1, tiny_artifact):
    v2 = register(tiny_artifact, parent=v1)
    assert v2.version == 2 and v2.parent == v1
    assert Deployment.objects.get(model=v1.model).live == v1


def test_canary_promote_rollback_cycle(v1, tiny_artifact):
    v2 = register(tiny_artifact)
    dep = registry.deployment_set_candidate(name=v1.model.name, version=2, percent=30)
    assert (dep.live, dep.candidate, dep.candidate_percent) == (v1, v2, 30)

    dep = registry.deployment_promote(name=v1.model.name)
    assert (dep.live, dep.candidate, dep.previous_live) == (v2, None, v1)

    dep = registry.deployment_rollback(name=v1.model.name)
    assert (dep.live, dep.previous_live) == (v1, v2)
    actions = list(DeploymentEvent.objects.order_by("id").values_list("action", "version__version"))
    assert actions == [
        ("register", 1),
        ("register", 2),
        ("canary", 2),
        ("promote", 2),
        ("rollback", 1),
    ]


def test_rollback_with_a_candidate_stops_it_and_keeps_live(v1, tiny_artifact):
    register(tiny_artifact)
    registry.deployment_set_candidate(name=v1.model.name, version=2, percent=50)
    dep = registry.deployment_rollback(name=v1.model.name)
    assert (dep.live, dep.candidate, dep.candidate_percent) == (v1, None, 0)


@pytest.mark.parametrize("percent", [-1, 100, 150])
def test_candidate_share_must_be_0_to_99(v1, tiny_artifact, percent):
    register(tiny_artifact)
    with pytest.raises(RegistryError):
        registry.deployment_set_candidate(name=v1.model.name, version=2, percent=percent)


def test_actions_on_unknown_models_and_versions_fail_clearly(v1):
    with pytest.raises(UnknownModelError):
        registry.deployment_promote(name="nope", version=1)
    with pytest.raises(UnknownModelError):
        registry.deployment_set_candidate(name=v1.model.name, version=9, percent=5)
    with pytest.raises(RegistryError):
        registry.deployment_promote(name=v1.model.name)  # no candidate
    with pytest.raises(RegistryError):
        registry.deployment_rollback(name=v1.model.name)  # nothing to roll back to


def test_invalid_model_names_are_refused(tiny_artifact):
    for name in ["../x", "a/b", "", ".hidden", "x" * 101]:
        with pytest.raises(RegistryError):
            registry.model_version_register(
                name=name, artifact=tiny_artifact, statistics={}, metrics={}, sklearn_version=""
            )


def test_router_splits_traffic_by_query_id(v1, tiny_artifact):
    register(tiny_artifact)
    registry.deployment_set_candidate(name=v1.model.name, version=2, percent=25)
    router = Router(ttl=0)
    ids = [uuid.uuid4() for _ in range(2000)]
    chosen = [router.resolve(None, qid).version for qid in ids]
    share = chosen.count(2) / len(chosen)
    assert 0.21 < share < 0.29
    # Stable: the same id always goes to the same version, by its bucket.
    for qid, version in zip(ids[:50], chosen[:50], strict=True):
        assert router.resolve(None, qid).version == version
        assert (version == 2) == (canary_bucket(qid) < 25)


def test_blue_green_standby_gets_no_routed_traffic_but_answers_pinned(v1, tiny_artifact):
    register(tiny_artifact)
    registry.deployment_set_candidate(name=v1.model.name, version=2, percent=0)
    router = Router(ttl=0)
    assert {router.resolve(None, uuid.uuid4()).version for _ in range(300)} == {1}
    assert router.resolve("clf.pickle:2", uuid.uuid4()).version == 2
    assert router.routes()["clf.pickle"].candidate.version == 2  # loaded and warm


def test_tampered_artifact_is_refused_and_live_keeps_serving(v1, tiny_artifact):
    v2 = register(tiny_artifact)
    store = storage.get_store()
    store.put_bytes(v2.artifact_key, tiny_artifact + b"tampered")
    router = Router(ttl=0)
    assert router.resolve(None, uuid.uuid4()).version == 1

    registry.deployment_promote(name=v1.model.name, version=2)
    # v2 cannot be loaded: the router keeps the last good route instead of failing.
    assert {router.resolve(None, uuid.uuid4()).version for _ in range(20)} == {1}
    with pytest.raises(Exception, match="cannot be loaded"):
        router.resolve("clf.pickle:2", uuid.uuid4())


def test_promotion_reaches_a_router_after_its_ttl(v1, tiny_artifact):
    register(tiny_artifact)
    router = Router(ttl=3600)
    assert router.resolve(None, uuid.uuid4()).version == 1
    registry.deployment_promote(name=v1.model.name, version=2)
    assert router.resolve(None, uuid.uuid4()).version == 1  # cached until the TTL expires
    router.invalidate()
    assert router.resolve(None, uuid.uuid4()).version == 2


def test_only_live_candidate_and_previous_versions_can_be_pinned(v1, tiny_artifact):
    for _ in range(3):
        register(tiny_artifact)  # versions 2, 3, 4, none rolled out
    name = v1.model.name
    router = Router(ttl=0)
    with pytest.raises(UnknownModelError, match=r"clf\.pickle:2 is not served"):
        router.resolve("clf.pickle:2", uuid.uuid4())  # registered, never live

    registry.deployment_promote(name=name, version=2)
    registry.deployment_promote(name=name, version=3)
    registry.deployment_set_candidate(name=name, version=4, percent=0)
    # live 3, previous 2 (one rollback away), candidate 4; version 1 is archived.
    assert router.resolve("clf.pickle:3", uuid.uuid4()).version == 3
    assert router.resolve("clf.pickle:2", uuid.uuid4()).version == 2
    assert router.resolve("clf.pickle:4", uuid.uuid4()).version == 4
    with pytest.raises(UnknownModelError, match=r"clf\.pickle:1 is not served"):
        router.resolve("clf.pickle:1", uuid.uuid4())

    registry.deployment_rollback(name=name)  # stops the candidate: 4 is no longer served
    with pytest.raises(UnknownModelError, match=r"clf\.pickle:4 is not served"):
        router.resolve("clf.pickle:4", uuid.uuid4())


def test_loading_a_pinned_version_holds_up_no_other_request(v1, tiny_artifact, monkeypatch):
    """The download and unpickling of a pinned version happen outside the router's locks:
    meanwhile the live version answers and the routing refreshes."""
    import threading

    from predicciones import serving

    register(tiny_artifact)
    registry.deployment_promote(name=v1.model.name, version=2)  # version 1 is now previous
    router = Router(ttl=0)
    assert router.resolve(None, uuid.uuid4()).version == 2
    loading, release = threading.Event(), threading.Event()
    real_load = serving.load_version

    def slow_load(row):
        loading.set()
        assert release.wait(30)
        return real_load(row)

    monkeypatch.setattr(serving, "load_version", slow_load)
    pinned, others = [], []
    pin = threading.Thread(target=lambda: pinned.append(router.resolve("clf.pickle:1", None)))
    pin.start()
    assert loading.wait(30)
    other = threading.Thread(
        target=lambda: others.extend(router.resolve(None, uuid.uuid4()) for _ in range(20))
    )
    other.start()
    other.join(timeout=20)
    still_waiting = other.is_alive()
    release.set()
    pin.join(timeout=30)
    other.join(timeout=30)
    assert not still_waiting, "requests for the live version waited for the pinned load"
    assert [v.version for v in others] == [2] * 20
    assert [v.version for v in pinned] == [1]
