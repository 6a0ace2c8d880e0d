"""Registry writes: register versions, bootstrap the shipped model, canary, promote, roll back.

Every rollout action is one transaction that locks the model's deployment row, so two
operators (or an operator and cron) cannot interleave; workers pick the change up within
``DIGITS_ROUTING_TTL`` seconds (see ``predicciones.serving``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction

from .. import storage
from ..exceptions import DeploymentChangedError, RegistryError, UnknownModelError
from ..ml.classifier import sha256_bytes
from ..models import (
    Deployment,
    DeploymentEvent,
    ModelVersion,
    RegisteredModel,
    is_valid_model_name,
)

logger = logging.getLogger(__name__)


def validate_model_name(name: str) -> str:
    if not is_valid_model_name(name):
        raise RegistryError(
            "A model name is 1-100 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit."
        )
    return name


def model_version_register(
    *,
    name: str,
    artifact: bytes,
    statistics: dict,
    metrics: dict,
    sklearn_version: str,
    training_data: dict | None = None,
    parent: ModelVersion | None = None,
    created_by: str = "",
    make_live_if_first: bool = False,
) -> ModelVersion:
    """Store an artifact and its training statistics, and record them as the next version.

    The new version is not live unless it is the model's first and ``make_live_if_first``.
    """
    validate_model_name(name)
    store = storage.get_store()
    for attempt in range(5):
        try:
            with transaction.atomic():
                # Version numbers (and their store keys) are handed out one at a time, so no
                # process ever writes over another's artifact.
                model = _locked_model(name)
                last = model.versions.order_by("-version").values_list("version", flat=True)
                number = (last.first() or 0) + 1
                artifact_key = storage.model_artifact_key(name, number)
                stats_key = storage.model_stats_key(name, number)
                # Objects first, row second: a row never points at a missing artifact.
                store.put_bytes(artifact_key, artifact)
                storage.put_json(store, stats_key, statistics)
                version = ModelVersion.objects.create(
                    model=model,
                    version=number,
                    sha256=sha256_bytes(artifact),
                    artifact_key=artifact_key,
                    stats_key=stats_key,
                    sklearn_version=sklearn_version,
                    metrics=metrics,
                    training_data=training_data or {},
                    parent=parent,
                    created_by=created_by,
                )
                _event(model, DeploymentEvent.Action.REGISTER, version, actor=created_by)
                if make_live_if_first and not Deployment.objects.filter(model=model).exists():
                    Deployment.objects.create(model=model, live=version)
                return version
        except IntegrityError:
            # Another process took this version number (or created the deployment): retry.
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class ShippedModel:
    """The files shipped in ``model/``: the pickle, its manifest and training statistics."""

    artifact: bytes
    sha256: str
    manifest: dict
    statistics: dict


def shipped_model_read() -> ShippedModel:
    """Read the shipped model files, refusing a pickle that does not match its manifest."""
    path = settings.DIGITS_SHIPPED_MODEL_PATH
    artifact = path.read_bytes()
    manifest = json.loads(path.with_suffix(".manifest.json").read_text())
    digest = sha256_bytes(artifact)
    if digest != manifest["sha256"]:
        raise RegistryError(f"{path} does not match the sha256 in its manifest; not registering")
    statistics = json.loads(path.with_suffix(".stats.json").read_text())
    return ShippedModel(artifact=artifact, sha256=digest, manifest=manifest, statistics=statistics)


def shipped_model_bootstrap() -> ModelVersion | None:
    """Register the shipped ``model/clf.pickle`` as version 1 of the default model, once.

    Returns the new version, or None when the default model already has versions (then the
    shipped version's objects are put back into the store if it lacks them, see
    :func:`shipped_model_store_sync`). The artifact's sha256 is checked against its manifest
    before anything is recorded.
    """
    name = settings.DIGITS_DEFAULT_MODEL
    if ModelVersion.objects.of_model(name).exists():
        shipped_model_store_sync()
        return None
    shipped = shipped_model_read()
    try:
        with transaction.atomic():
            # Every gunicorn worker bootstraps as it starts (serving.warm_up), all at once: with
            # the model row locked, "no version yet" and registering are one step, so exactly
            # one worker registers (without the lock, each one added a copy as a new version).
            model = _locked_model(name)
            if model.versions.exists():
                return None
            version = model_version_register(
                name=name,
                artifact=shipped.artifact,
                statistics=shipped.statistics,
                metrics=shipped.manifest.get("metrics", {}),
                sklearn_version=shipped.manifest.get("sklearn_version", ""),
                training_data=shipped.manifest.get("training_data", {}),
                created_by="bootstrap",
                make_live_if_first=True,
            )
    except IntegrityError:
        return None  # another worker bootstrapped it first
    logger.info("registered the shipped model as %s (live)", version)
    return version


def shipped_model_store_sync() -> list[str]:
    """Upload the shipped artifact and statistics for registered versions the store lacks.

    This covers a registry bootstrapped on the local folder and pointed at S3 later: every
    version of the default model whose sha256 is the shipped pickle's gets its objects back
    from ``model/``. Versions trained here cannot be restored this way (their files exist
    only in the old store). Returns the keys written.
    """
    name = settings.DIGITS_DEFAULT_MODEL
    shipped = shipped_model_read()
    store = storage.get_store()
    written = []
    for version in ModelVersion.objects.of_model(name).filter(sha256=shipped.sha256):
        if not store.exists(version.artifact_key):
            store.put_bytes(version.artifact_key, shipped.artifact)
            written.append(version.artifact_key)
        if version.stats_key and not store.exists(version.stats_key):
            storage.put_json(store, version.stats_key, shipped.statistics)
            written.append(version.stats_key)
    if written:
        logger.info("restored the shipped model's objects in %s: %s", store.describe(), written)
    return written


def deployment_set_candidate(
    *,
    name: str,
    version: int,
    percent: int,
    actor: str = "",
    reason: str = "",
    expect: DeploymentState | None = None,
    expect_live: int | None = None,
) -> Deployment:
    """Start (or re-weight) a candidate: 1..99 % for a canary, 0 % for a blue/green standby."""
    if not 0 <= percent <= 99:
        raise RegistryError(
            f"percent must be 0..99 (got {percent}); to send all traffic, promote the version"
        )
    with transaction.atomic():
        deployment = _locked_deployment(name, expect=expect, expect_live=expect_live)
        target = _version(name, version)
        _check_not_live(deployment, target)
        previous = deployment.candidate
        deployment.candidate = target
        deployment.candidate_percent = percent
        deployment.save()
        _event(
            deployment.model,
            DeploymentEvent.Action.CANARY,
            target,
            previous=previous,
            percent=percent,
            actor=actor,
            reason=reason,
        )
        return deployment


@dataclass(frozen=True)
class DeploymentState:
    """Which versions (row ids) were live and candidate when a decision was made, and what
    made it (for the message when the deployment has changed since)."""

    live_id: int
    candidate_id: int | None
    seen: str = field(default="it was reviewed", compare=False)

    @classmethod
    def of(cls, deployment: Deployment, seen: str = "it was reviewed") -> DeploymentState:
        return cls(
            live_id=deployment.live_id,
            candidate_id=deployment.candidate_id,
            seen=seen,
        )


def deployment_describe(deployment: Deployment) -> str:
    """``"live clf.pickle:2, candidate clf.pickle:3 at 10%"`` (or ``", no candidate"``)."""
    text = f"live {deployment.live}"
    if deployment.candidate_id:
        return f"{text}, candidate {deployment.candidate} at {deployment.candidate_percent}%"
    return f"{text}, no candidate"


def deployment_promote(
    *,
    name: str,
    version: int | None = None,
    actor: str = "",
    reason: str = "",
    expect: DeploymentState | None = None,
    expect_live: int | None = None,
) -> Deployment:
    """Make the candidate (or the given version) live; the old live version stays one
    rollback away.

    With ``expect``, nothing is done (DeploymentChangedError) unless the deployment is still
    in that state once locked: a decision made on one candidate's numbers never applies to
    another candidate swapped in meanwhile. ``expect_live``: the same for the live version
    number an operator saw (compare-and-swap: two operators acting on one state cannot
    both act).
    """
    with transaction.atomic():
        deployment = _locked_deployment(name, expect=expect, expect_live=expect_live)
        if version is None:
            if deployment.candidate is None:
                raise RegistryError(f"{name} has no candidate to promote; name a version")
            target = deployment.candidate
        else:
            target = _version(name, version)
        _check_not_live(deployment, target)
        previous = deployment.live
        deployment.previous_live = previous
        deployment.live = target
        if deployment.candidate_id == target.pk:
            deployment.candidate = None
            deployment.candidate_percent = 0
        deployment.save()
        _event(
            deployment.model,
            DeploymentEvent.Action.PROMOTE,
            target,
            previous=previous,
            actor=actor,
            reason=reason,
        )
        return deployment


def deployment_rollback(
    *,
    name: str,
    actor: str = "",
    reason: str = "",
    expect: DeploymentState | None = None,
    expect_live: int | None = None,
) -> Deployment:
    """Undo the last rollout step.

    With a candidate running, stop it (live unchanged). Otherwise put the previously live
    version back; the version rolled back from becomes the previous one, so a second
    rollback undoes the first (when it was meant to: ``expect``/``expect_live`` as for
    :func:`deployment_promote` keep two simultaneous rollbacks from cancelling each other).
    """
    with transaction.atomic():
        deployment = _locked_deployment(name, expect=expect, expect_live=expect_live)
        if deployment.candidate is not None:
            stopped = deployment.candidate
            deployment.candidate = None
            deployment.candidate_percent = 0
            deployment.save()
            _event(
                deployment.model,
                DeploymentEvent.Action.ROLLBACK,
                deployment.live,
                previous=stopped,
                percent=0,
                actor=actor,
                reason=reason or f"candidate {stopped} stopped",
            )
            return deployment
        if deployment.previous_live is None:
            raise RegistryError(f"{name} has no previous live version to roll back to")
        current = deployment.live
        deployment.live, deployment.previous_live = deployment.previous_live, current
        deployment.save()
        _event(
            deployment.model,
            DeploymentEvent.Action.ROLLBACK,
            deployment.live,
            previous=current,
            actor=actor,
            reason=reason,
        )
        return deployment


def _locked_model(name: str) -> RegisteredModel:
    """The model's row (created if new), locked until the transaction ends."""
    model, _ = RegisteredModel.objects.get_or_create(name=name)
    return RegisteredModel.objects.select_for_update().get(pk=model.pk)


def _check_not_live(deployment: Deployment, target: ModelVersion) -> None:
    if target.pk == deployment.live_id:
        raise RegistryError(f"{target} is already live")


def _locked_deployment(
    name: str, *, expect: DeploymentState | None = None, expect_live: int | None = None
) -> Deployment:
    """The model's deployment row, locked until the transaction ends (select_for_update), and
    checked against what the caller saw: the compare of a compare-and-swap."""
    pk = Deployment.objects.filter(model__name=name).values_list("pk", flat=True).first()
    if pk is None:
        raise UnknownModelError(f"No deployed model named {name!r}.")
    # Lock the row alone, then read it with its versions. Locking a join instead makes
    # PostgreSQL re-check the join against the row another transaction just changed (its new
    # live_id against the old live version's row) and return no row at all to whoever waited.
    Deployment.objects.select_for_update().filter(pk=pk).values_list("pk", flat=True).get()
    deployment = Deployment.objects.select_related(
        "model", "live", "candidate", "previous_live"
    ).get(pk=pk)
    if expect_live is not None and deployment.live.version != expect_live:
        raise DeploymentChangedError(
            f"{name}:{expect_live} is not live (now {deployment_describe(deployment)}); "
            "nothing done"
        )
    if expect is not None and DeploymentState.of(deployment) != expect:
        raise DeploymentChangedError(
            f"the deployment of {name} changed since {expect.seen} "
            f"(now {deployment_describe(deployment)}); nothing done"
        )
    return deployment


def _version(name: str, version: int) -> ModelVersion:
    try:
        return ModelVersion.objects.select_related("model").get(model__name=name, version=version)
    except ModelVersion.DoesNotExist:
        raise UnknownModelError(f"{name} has no version {version}.") from None


def _event(model, action, version, *, previous=None, percent=None, actor="", reason=""):
    DeploymentEvent.objects.create(
        model=model,
        action=action,
        version=version,
        previous_version=previous,
        percent=percent,
        actor=actor[:100],
        reason=reason,
    )
