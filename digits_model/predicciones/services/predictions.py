"""Prediction writes: read a digit from an upload, log it, record feedback."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from ..exceptions import DecodeBusyError, UnknownQueryError
from ..ml.classifier import predict_proba, ranked, sha256_bytes
from ..ml.decoding import Header, is_large
from ..ml.preprocessing import preprocess
from ..models import Prediction, PredictionFailure
from ..prediction_log.group_commit import log_row_commit
from ..prediction_log.writing import LogRow
from ..serving import LoadedVersion, get_router

logger = logging.getLogger(__name__)

#: Digits offered besides the prediction, most likely first (the page shows them when the
#: model is unsure, so the person can tap the right one: that is labelled feedback).
N_ALTERNATIVES = 2


@dataclass(frozen=True)
class PredictionResult:
    query_id: uuid.UUID
    prediction: int
    confidence: float
    seconds: float
    version: LoadedVersion
    grid: list[list[int]]
    #: The next most likely digits after ``prediction``, as (digit, probability).
    alternatives: list[tuple[int, float]]


def prediction_create(
    *,
    image: bytes,
    model_ref: str | None,
    query_id: uuid.UUID,
    log: Callable[[LogRow], None] | None = None,
) -> PredictionResult:
    """Preprocess an upload, predict with the routed version, and log it before answering.

    ``seconds`` is the model-side time: decode, preprocess and predict (not the database
    write or the HTTP round trip). ``log`` takes the row (default: ``log_row_commit``,
    committed when it returns); a caller that passes its own must see the row committed
    before it answers.

    Raises
    ------
    UnknownModelError, NoLiveModelError
        ``model_ref`` names nothing registered, or nothing is loaded.
    ImageError
        The upload is not a usable image.
    DecodeBusyError
        A large upload found this process's decoding slots busy for too long.
    PredictionLogError
        The log row could not be written; the prediction is not answered.
    """
    version = get_router().resolve(model_ref, query_id)
    started = time.perf_counter()
    pre = preprocess(
        image,
        max_pixels=settings.DIGITS_MAX_IMAGE_PIXELS,
        max_full_decode_pixels=settings.DIGITS_MAX_FULL_DECODE_PIXELS,
        admit=large_decode_slot,
    )
    top = _ranked(version, pre.features, query_id)
    result = PredictionResult(
        query_id=query_id,
        prediction=top[0][0],
        confidence=top[0][1],
        seconds=time.perf_counter() - started,
        version=version,
        grid=pre.grid,
        alternatives=top[1:],
    )
    (log or log_row_commit)(_log_row(result, pre.features, image))
    return result


def _ranked(version: LoadedVersion, features, query_id: uuid.UUID) -> list[tuple[int, float]]:
    """The digits the version reads, most likely first (the answer and its alternatives)."""
    try:
        return ranked(predict_proba(version.clf, features)[0], k=1 + N_ALTERNATIVES)
    except Exception as exc:
        # A failure inside a model version counts against it (canary error rate).
        _record_failure(query_id, version, exc)
        raise


def _log_row(result: PredictionResult, features, image: bytes) -> LogRow:
    return LogRow.of(
        query_id=result.query_id,
        created_at=timezone.now(),
        model_version_id=result.version.pk,
        features=features,
        prediction=result.prediction,
        confidence=result.confidence,
        latency_ms=result.seconds * 1000.0,
        image_sha256=sha256_bytes(image),
    )


_slots: dict[int, threading.BoundedSemaphore] = {}
_slots_lock = threading.Lock()


@contextmanager
def large_decode_slot(header: Header):
    """Run a large decode (``ml.decoding.is_large``) in one of this process's
    ``DIGITS_DECODE_CONCURRENCY`` slots, waiting at most ``DIGITS_DECODE_WAIT`` seconds.

    A worker's memory then holds one large decode at a time (each is bounded by the pixel
    caps), and eight large uploads at once cost a worker what one does: the excess is told to
    come back (503, Retry-After) instead of taking every thread. Small uploads go straight in.
    """
    if not is_large(header):
        yield
        return
    size = max(1, settings.DIGITS_DECODE_CONCURRENCY)
    with _slots_lock:
        slots = _slots.setdefault(size, threading.BoundedSemaphore(size))
    if not slots.acquire(timeout=max(0.0, settings.DIGITS_DECODE_WAIT)):
        logger.warning("large upload refused: %s decode slot(s) busy", size)
        raise DecodeBusyError()
    try:
        yield
    finally:
        slots.release()


def feedback_record(*, query_id: uuid.UUID, label: int, source: str | None = None) -> Prediction:
    """Attach the true label to a logged prediction, with who gave it (``provenance``; None
    for unknown, never trusted); a second label replaces the first, source included."""
    with transaction.atomic():
        updated = Prediction.objects.filter(query_id=query_id).update(
            label=label, labelled_at=timezone.now(), label_source=source[:64] if source else None
        )
        if not updated:
            raise UnknownQueryError()
    return Prediction.objects.select_related("model_version__model").get(query_id=query_id)


def _record_failure(query_id: uuid.UUID, version: LoadedVersion, exc: Exception) -> None:
    logger.exception("model %s:%s failed on %s", version.model_name, version.version, query_id)
    try:
        PredictionFailure.objects.create(
            query_id=query_id,
            created_at=timezone.now(),
            model_version_id=version.pk,
            error=type(exc).__name__[:200],
        )
    except DatabaseError:
        logger.exception("could not record the failure of %s", query_id)
