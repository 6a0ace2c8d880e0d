"""The prediction log's group commit, with its real writer thread and database connection:
concurrent rows committed together, each submitter released by its own row's commit, a
failed batch failing each of its requests and readiness until a commit works again."""

import threading
import uuid

import numpy as np
import pytest
from django.utils import timezone

from predicciones import readiness
from predicciones.exceptions import PredictionLogError
from predicciones.models import Prediction
from predicciones.prediction_log.group_commit import GroupCommitWriter
from predicciones.prediction_log.writing import LogRow
from predicciones.services.registry import shipped_model_bootstrap

pytestmark = pytest.mark.django_db(transaction=True)


class RecordingWriter(GroupCommitWriter):
    """The writer, noting each batch's size before committing it."""

    def __init__(self, **kwargs):
        self.batches: list[int] = []
        super().__init__(**kwargs)

    def _commit(self, batch):
        self.batches.append(len(batch))
        super()._commit(batch)


def row(version_id: int) -> LogRow:
    return LogRow.of(
        query_id=uuid.uuid4(),
        created_at=timezone.now(),
        model_version_id=version_id,
        features=np.arange(64) % 17,
        prediction=7,
        confidence=0.9,
        latency_ms=2.0,
        image_sha256="0" * 64,
    )


def test_rows_queued_together_commit_in_one_batch_and_each_waits_for_its_own():
    version = shipped_model_bootstrap()
    writer = RecordingWriter(max_rows=64, max_wait=0.2)
    rows = [row(version.pk) for _ in range(20)]
    futures = [writer.submit(r) for r in rows]
    for future in futures:
        future.result(timeout=30)
    assert sum(writer.batches) == 20
    assert writer.batches[0] > 1, writer.batches  # queued within the wait: together
    logged = set(Prediction.objects.values_list("query_id", flat=True))
    assert {r.query_id for r in rows} <= logged


def test_a_batch_holds_at_most_max_rows():
    version = shipped_model_bootstrap()
    writer = RecordingWriter(max_rows=4, max_wait=0.2)
    for future in [writer.submit(row(version.pk)) for _ in range(10)]:
        future.result(timeout=30)
    assert max(writer.batches) <= 4 and sum(writer.batches) == 10


def test_concurrent_submitters_are_each_answered_once_their_row_is_committed():
    version = shipped_model_bootstrap()
    writer = RecordingWriter(max_rows=64, max_wait=0.0)
    committed: list[uuid.UUID] = []

    def request() -> None:
        for _ in range(10):
            r = row(version.pk)
            writer.submit(r).result(timeout=30)
            committed.append(r.query_id)

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # Read by another connection (the test's) once every submitter was released.
    assert len(committed) == 80
    assert Prediction.objects.filter(query_id__in=committed).count() == 80


def test_a_failed_batch_fails_each_request_and_readiness_until_a_commit_works():
    version = shipped_model_bootstrap()
    writer = RecordingWriter(max_rows=64, max_wait=0.2)
    good, bad = row(version.pk), row(version.pk + 999)  # no such version: the batch fails
    futures = [writer.submit(good), writer.submit(bad)]
    for future in futures:
        with pytest.raises(PredictionLogError):
            future.result(timeout=30)
    assert writer.batches == [2]
    assert not Prediction.objects.filter(query_id=good.query_id).exists()
    assert readiness.recent_write_failure() is not None
    writer.submit(row(version.pk)).result(timeout=30)
    assert readiness.recent_write_failure() is None
