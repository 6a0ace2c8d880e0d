"""``app.py`` reads the sample images, and ``data_generator.ipynb`` re-creates them exactly."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.paths import REPO_DIR
from predicciones.tests.sample_images import HARD_IMAGES, TEST_DIR, labelled_images


def test_labels_cover_at_least_50_images():
    images = labelled_images()
    assert len(images) >= 50
    assert {label for _, label in images} == set(range(10))
    assert all(path.is_file() for path, _ in images)


def test_app_prints_the_digit():
    path, label = labelled_images()[0]
    out = subprocess.run(
        [sys.executable, str(REPO_DIR / "app.py"), str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == str(label)


def test_app_refuses_a_non_image(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    out = subprocess.run(
        [sys.executable, str(REPO_DIR / "app.py"), str(bad)], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "Unsupported" in out.stderr


def test_sample_images_are_read_correctly(clf):
    from predicciones.ml.classifier import predict
    from predicciones.ml.preprocessing import preprocess

    wrong = [
        path.name
        for path, label in labelled_images()
        if predict(clf, preprocess(path.read_bytes()).features)[0][0] != label
    ]
    assert set(wrong) <= set(HARD_IMAGES), wrong


@pytest.mark.slow
def test_notebook_regenerates_identical_images(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("DIGITS_TEST_DIR", str(tmp_path))
    notebook = nbformat.read(REPO_DIR / "data_generator.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(REPO_DIR)}},
    )
    client.execute()
    assert (tmp_path / "labels.csv").read_bytes() == (TEST_DIR / "labels.csv").read_bytes()
    for path, _ in labelled_images():
        assert (tmp_path / path.name).read_bytes() == path.read_bytes()
