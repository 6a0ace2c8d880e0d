"""``make eval`` where the semeion digits are not beside the clone: one line that says what is
missing and how to point at it, exit 2, no traceback."""

import shutil
import subprocess
import sys

import pytest

from harness.paths import REPO_DIR


def test_missing_semeion_is_one_line_naming_the_option(tmp_path):
    missing = tmp_path / "nowhere" / "semeion"
    result = subprocess.run(
        [sys.executable, "-m", "bench.evaluate", "--semeion", str(missing), "--sample", "5"],
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert f"semeion.csv not found at {missing}" in lines[0]
    assert "--semeion PATH" in lines[0] and "make eval SEMEION=PATH" in lines[0]


def test_make_eval_passes_semeion_to_the_script():
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    result = subprocess.run(
        [make, "-n", "eval", "SEMEION=/data/semeion"],
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "-m bench.evaluate --semeion /data/semeion" in result.stdout
