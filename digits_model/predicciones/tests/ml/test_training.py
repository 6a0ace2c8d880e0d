"""Training is deterministic, keeps its held-out parts apart, and accepts extra labelled rows.

Uses a cheap setting (one base digit in a few hundred, one distortion each) to stay fast;
the shipped model's full reproduction is ``python manage.py train_model --seed 0``.
"""

from __future__ import annotations

import numpy as np
import pytest

from predicciones.ml import recipe, sources, splits, training
from predicciones.ml.augment import reconstruct_bitmap, training_features
from predicciones.ml.classifier import dump_classifier, predict
from predicciones.ml.splits import base_rows, base_validation_set
from predicciones.ml.training import train_classifier, training_statistics

#: One base digit in STEP: about 200 MNIST digits, 13 optdigits and 3 load_digits.
STEP = 270


@pytest.fixture(scope="module")
def quick_model():
    return train_classifier(seed=0, quick=True, n_augment=1, step=STEP)


def test_reconstructed_bitmap_reproduces_the_counts(base_digits):
    X, _ = base_digits
    for row in X[:50]:
        bitmap = reconstruct_bitmap(row)
        counts = bitmap.reshape(8, 4, 8, 4).sum(axis=(1, 3)).ravel()
        np.testing.assert_array_equal(counts, row)


def test_same_seed_gives_the_same_bytes(quick_model):
    clf, stats = quick_model
    again, stats_again = train_classifier(seed=0, quick=True, n_augment=1, step=STEP)
    assert dump_classifier(clf) == dump_classifier(again)
    assert stats == stats_again


def test_rendering_does_not_depend_on_the_number_of_processes(quick_model):
    clf, _ = quick_model
    parallel, _ = train_classifier(seed=0, quick=True, n_augment=1, step=STEP, n_jobs=2)
    assert dump_classifier(clf) == dump_classifier(parallel)


def test_training_rows_come_from_every_source_and_never_from_held_out_digits():
    rows = base_rows(part="train", n_augment=0, step=97)
    names = splits.source_of(rows.ids)
    assert set(names) == set(splits.SOURCES)
    index = rows.ids - np.array([splits.ID_OFFSET[s] for s in names])
    held_out = (np.isin(names, splits.VALIDATION_SOURCES) & (index % 10 == 9)) | (
        (names == "sklearn") & (index >= splits.CALIBRATION_START)
    )
    assert not held_out.any()
    unipen = names == "unipen"
    writers = sources.load_unipen().writer[index[unipen]]
    assert not np.isin(splits.writer_number(writers) % 10, (8, 9)).any()
    labels = {"mnist": 5, "optdigits": 0, "sklearn": 0, "unipen": 0, "pendigits": 8}
    for source, label in labels.items():  # the first digit of each source
        first = np.flatnonzero(names == source)[0]
        assert rows.y[first] == label


def test_unipen_is_split_by_writer():
    n = sources.N_UNIPEN
    part = splits.digit_part("unipen", np.arange(n))
    writers = sources.load_unipen().writer
    for name in ("train", "validation", "calibration"):
        assert part[part == name].size
    for writer in set(writers):
        assert len(set(part[writers == writer])) == 1, writer  # a writer is on one side
    held = {str(w) for w in writers[part == "validation"]}
    assert len(held) == 13 and len({w.split("-")[0] for w in held}) >= 5


def test_statistics_describe_the_training_rows(quick_model):
    _, stats = quick_model
    rows = base_rows(part="train", n_augment=1, step=STEP)
    assert stats["n_samples"] == len(rows)
    counts = np.array(stats["value_counts"])
    assert counts.shape == (64, 17)
    assert (counts.sum(axis=1) == stats["n_samples"]).all()
    assert stats["class_counts"] == np.bincount(rows.y, minlength=10).tolist()
    assert len(stats["feature_means"]) == 64


def test_training_statistics_counts_values():
    X = np.array([[0] * 64, [16] * 64, [3] * 64])
    stats = training_statistics(X, np.array([0, 1, 1]))
    assert stats["value_counts"][5][0] == 1
    assert stats["value_counts"][5][16] == 1
    assert stats["value_counts"][5][3] == 1
    assert stats["class_counts"][:2] == [1, 2]


def test_extra_rows_are_trained_on_as_logged_and_drawn_again():
    # Forty copies of one row, all labelled 5: the model must learn that row is a 5.
    row = np.tile(np.array([[16] * 8 + [0] * 56], dtype=float), (40, 1))
    clf, stats = train_classifier(
        seed=0, quick=True, n_augment=0, step=STEP, extra_X=row, extra_y=np.full(40, 5)
    )
    base = len(base_rows(part="train", n_augment=0, step=STEP))
    drawn = stats["n_samples"] - base - 40
    assert 0 < drawn <= 40 * recipe.FEEDBACK_AUGMENT
    assert predict(clf, row[:1])[0][0] == 5


def test_feedback_rows_weigh_a_share_of_the_base():
    X, y = np.zeros((10, 64)), np.arange(10)
    X[:, 18:22] = 16  # a bar, drawable
    F, labels, weight = training.feedback_rows(X, y, base_weight=1e6)
    np.testing.assert_array_equal(F[:10], X)  # the rows as logged come first
    assert len(F) > 10 and set(labels) == set(y)
    assert weight.sum() == pytest.approx(recipe.FEEDBACK_SHARE * 1e6)
    # On a lighter base each row weighs as much as the heaviest base row...
    _, _, light = training.feedback_rows(X, y, base_weight=20.0 * len(F))
    assert (light == max(recipe.SOURCE_WEIGHT.values())).all()
    # ...unless that would make the feedback more than its most share of the base.
    _, _, capped = training.feedback_rows(X, y, base_weight=10.0)
    assert capped.sum() == pytest.approx(recipe.FEEDBACK_MAX_SHARE * 10.0)


def test_extra_rows_are_validated():
    with pytest.raises(ValueError, match="shape"):
        train_classifier(
            seed=0, quick=True, n_augment=0, step=STEP, extra_X=np.zeros((2, 10)), extra_y=[1, 2]
        )
    with pytest.raises(ValueError, match=r"0\.\.16"):
        train_classifier(
            seed=0, quick=True, n_augment=0, step=STEP, extra_X=np.full((1, 64), 99.0), extra_y=[1]
        )


def test_validation_set_is_fixed_and_holds_the_mnist_slice():
    X, y = base_validation_set()
    assert X.shape[1] == 64 and len(X) == len(y)
    _, _, ids = splits.base_validation_set_with_ids()
    mnist = splits.source_of(ids) == "mnist"
    assert mnist.sum() == 6000
    assert (ids[mnist] % 10 == 9).all()
    X2, _ = base_validation_set()
    assert X2 is X  # cached: every model is judged on the same rows


def test_a_few_hundred_feedback_rows_teach_a_new_style(base_digits):
    # A "style" the base digits lack: every digit mirrored left-right, as an upload would
    # log it (rendered and preprocessed). 300 labelled rows of it must be learnt.
    X, y = base_digits
    mirrored = X.reshape(-1, 8, 8)[:, :, ::-1].reshape(-1, 64)
    feedback = np.arange(1, 1797, 6)[:300]
    unseen = np.arange(4, 1797, 6)[:300]
    rows, source, _ = training_features(mirrored[feedback], n_augment=0, seed=5)
    test_rows, test_source, _ = training_features(mirrored[unseen], n_augment=0, seed=6)
    test_y = y[unseen][test_source]
    plain, _ = train_classifier(seed=0, quick=True, n_augment=1, step=90)
    taught, _ = train_classifier(
        seed=0, quick=True, n_augment=1, step=90, extra_X=rows, extra_y=y[feedback][source]
    )
    before = (predict(plain, test_rows)[0] == test_y).mean()
    after = (predict(taught, test_rows)[0] == test_y).mean()
    assert after >= before + 0.2 and after >= 0.8, (before, after)


def test_a_small_training_set_is_trained_for_more_epochs(base_digits, monkeypatch):
    X, y = base_digits
    monkeypatch.setattr(training, "MIN_STEPS", 40)
    batch = recipe.MLP_PARAMS["batch_size"]
    # 600 rows are 3 batches an epoch: 40 steps take 14 epochs, fewer than the recipe's 15.
    small = training.fit_classifier(X[:600], y[:600], members=1)
    assert small[-1].estimators_[0].max_iter == recipe.MLP_PARAMS["max_iter"]
    monkeypatch.setattr(training, "MIN_STEPS", 60)
    longer = training.fit_classifier(X[:600], y[:600], members=1)
    assert longer[-1].estimators_[0].max_iter == -(-60 // -(-600 // batch)) == 20
    assert longer[-1].estimators_[0].n_iter_ > recipe.MLP_PARAMS["max_iter"]
    explicit = training.fit_classifier(X[:600], y[:600], members=1, max_iter=3)
    assert explicit[-1].estimators_[0].max_iter == 3


def test_rows_and_uploads_can_be_had_as_the_bitmaps_they_are_counted_from(base_digits):
    from predicciones.ml.normalisation import bitmap_to_features
    from predicciones.ml.validation import styled_features

    X, _ = base_digits
    features, which, variant = training_features(X[:8], n_augment=2, seed=3)
    bitmaps, which_b, variant_b = training_features(X[:8], n_augment=2, seed=3, bitmaps=True)
    assert bitmaps.shape == (len(features), 32, 32)
    np.testing.assert_array_equal(which, which_b)
    np.testing.assert_array_equal(variant, variant_b)
    np.testing.assert_array_equal([bitmap_to_features(b) for b in bitmaps], features)
    features, accepted = styled_features(X[:3], np.arange(3), seed=3)
    bitmaps, accepted_b = styled_features(X[:3], np.arange(3), seed=3, bitmaps=True)
    np.testing.assert_array_equal(accepted, accepted_b)
    assert bitmaps.shape == (3, features.shape[1], 32, 32)
    counted = [[bitmap_to_features(b) for b in row] for row in bitmaps]
    np.testing.assert_array_equal(counted, features)
