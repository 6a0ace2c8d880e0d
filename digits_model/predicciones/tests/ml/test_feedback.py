"""The per-source cap on the feedback a retrain trains on (pure function, no database)."""

import numpy as np
import pytest

from predicciones.ml.feedback import cap_per_source


def test_each_source_keeps_its_latest_rows_up_to_the_cap():
    sources = ["a", "b", "a", "a", "b", "a"]
    keep = cap_per_source(sources, 2)
    assert keep.tolist() == [False, True, False, True, True, True]


def test_exempt_sources_are_kept_whole():
    sources = ["trusted"] * 5 + ["x"] * 5
    keep = cap_per_source(sources, 1, exempt={"trusted"})
    assert keep.tolist() == [True] * 5 + [False] * 4 + [True]


def test_unknown_sources_are_one_source():
    keep = cap_per_source([None, "", None, None], 2)
    assert keep.tolist() == [False, False, True, True]


def test_a_cap_of_zero_keeps_only_exempt_rows_and_a_negative_cap_is_refused():
    assert cap_per_source(["a", "t"], 0, exempt={"t"}).tolist() == [False, True]
    with pytest.raises(ValueError, match="cap must be >= 0"):
        cap_per_source(["a"], -1)


def test_many_sources_of_few_rows_are_untouched():
    sources = [f"addr:198.51.100.{i % 40}" for i in range(120)]
    assert cap_per_source(sources, 3).all()
    assert cap_per_source([], 5).dtype == np.bool_
