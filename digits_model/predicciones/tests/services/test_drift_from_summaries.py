"""A drift report read from hourly summaries plus raw rows is the one read from raw rows.

Property (hypothesis): for random traffic over random hours, some hours summarised and
some not, and a window with random, unaligned ends, ``check_drift --since --until`` gives
the same report, number for number, whether whole hours come from their summaries or
every row is read; only the report's ``sources`` differ.
"""

import datetime as dt

import numpy as np
import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from predicciones.exceptions import WindowRowsDeletedError
from predicciones.models import PredictionHour
from predicciones.options import drift_thresholds, lifecycle_settings
from predicciones.prediction_log.layout import hour_floor
from predicciones.prediction_log.maintenance import log_maintain
from predicciones.services.drift import drift_report_create
from predicciones.services.registry import shipped_model_bootstrap
from predicciones.tests.factories import predictions_log

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_store")]

HOUR = dt.timedelta(hours=1)
SPAN_HOURS = 12
#: Fields of a report that name the run rather than describe the data.
RUN_FIELDS = {"report_uid", "created_at", "store_key", "sources"}


@pytest.fixture
def live():
    return shipped_model_bootstrap()


def the_data(report) -> dict:
    return {k: v for k, v in report.document.items() if k not in RUN_FIELDS}


traffic = st.lists(
    st.tuples(
        st.integers(0, SPAN_HOURS * 3600 * 1000 - 1),  # milliseconds into the span
        st.lists(st.integers(0, 16), min_size=64, max_size=64),
        st.integers(0, 9),
        # any probability: tiny ones too, where rounding to 2**-53 units shows
        st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 1.0, 5e-324, 0.1, 1 / 3])),
    ),
    min_size=1,
    max_size=120,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=traffic,
    unsummarised=st.sets(st.integers(0, SPAN_HOURS - 1), max_size=SPAN_HOURS),
    since_ms=st.integers(0, SPAN_HOURS * 3600 * 1000),
    length_ms=st.integers(0, SPAN_HOURS * 3600 * 1000),
    min_samples=st.integers(1, 50),
)
def test_summaries_plus_raw_rows_give_the_raw_report(
    live, rows, unsummarised, since_ms, length_ms, min_samples
):
    start = hour_floor(timezone.now()) - dt.timedelta(days=2)
    with transaction.atomic():
        for offset, features, prediction, confidence in rows:
            predictions_log(
                live,
                np.array([features]),
                predictions=[prediction],
                confidences=[confidence],
                start=start + dt.timedelta(milliseconds=offset),
            )
        log_maintain(
            now=start + (SPAN_HOURS + 1) * HOUR,
            config=lifecycle_settings(retention_days=30, grace_seconds=0),
        )
        # Some hours not summarised yet: they are read from the rows.
        PredictionHour.objects.filter(hour__in=[start + h * HOUR for h in unsummarised]).delete()
        since = start + dt.timedelta(milliseconds=since_ms)
        until = since + dt.timedelta(milliseconds=length_ms)
        kwargs = {"since": since, "until": until, "save": False}
        kwargs["thresholds"] = drift_thresholds(min_samples=min_samples)
        fast = drift_report_create(**kwargs)
        raw = drift_report_create(**kwargs, use_summaries=False)
        assert the_data(fast) == the_data(raw)
        sources = fast.document["sources"]
        assert (
            sources["raw_rows"]
            + sum(
                PredictionHour.objects.filter(
                    hour__gte=since, hour__lt=hour_floor(until + dt.timedelta(microseconds=1))
                ).values_list("n", flat=True)
            )
            == raw.document["n_current"]
        )
        transaction.set_rollback(True)


def test_a_month_is_read_from_720_summaries(live, rng):
    """The planner reads whole hours from summaries: 30 days, one summary row per hour."""
    start = hour_floor(timezone.now()) - dt.timedelta(days=31)
    for day in range(30):
        for hour in range(24):
            at = start + dt.timedelta(days=day, hours=hour, minutes=17)
            predictions_log(live, rng.integers(0, 17, (2, 64)), start=at)
    log_maintain(
        now=start + dt.timedelta(days=30, minutes=20),
        config=lifecycle_settings(retention_days=60, grace_seconds=0),
    )
    since, until = start, start + dt.timedelta(days=30) - dt.timedelta(microseconds=1)
    fast = drift_report_create(since=since, until=until, save=False)
    assert fast.document["sources"] == {"summary_hours": 720, "raw_rows": 0}
    raw = drift_report_create(since=since, until=until, save=False, use_summaries=False)
    assert the_data(fast) == the_data(raw) and raw.n_current == 1440


def test_a_window_that_cuts_a_pruned_hour_is_refused_naming_whole_hours(live, rng):
    start = hour_floor(timezone.now()) - dt.timedelta(days=5)
    predictions_log(live, rng.integers(0, 17, (60, 64)), start=start, step=dt.timedelta(minutes=1))
    log_maintain(now=start + dt.timedelta(days=3), config=lifecycle_settings(retention_days=1))
    whole = drift_report_create(since=start, until=start + HOUR, save=False)
    assert whole.n_current == 60 and whole.document["sources"]["summary_hours"] == 1
    with pytest.raises(WindowRowsDeletedError, match="whole hours"):
        drift_report_create(since=start + dt.timedelta(minutes=30), save=False)
