"""``manage.py models``: stages that say what happened to a version, and accuracy figures
that compare (measured on the same rows)."""

import io
import json
import re

import pytest
from django.conf import settings
from django.core.management import call_command

from predicciones.services import registry

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_store")]

MODEL = "clf.pickle"
#: Rows of the fixed validation holdout, as the shipped model's manifest records them: a
#: retrained version is scored on the same rows.
HOLDOUT_ROWS = json.loads(
    settings.DIGITS_SHIPPED_MODEL_PATH.with_suffix(".manifest.json").read_text()
)["metrics"]["validation"]["n"]
#: What a retrain records for a candidate that passed the gate against v1.
RETRAINED_METRICS = {
    "validation": {"set": "a1b2c3d4e5f60718", "accuracy": 0.967, "n": 642, "live_accuracy": 0.936},
    "base_holdout": {"accuracy": 0.9497, "n": HOLDOUT_ROWS},
}


@pytest.fixture
def v1():
    return registry.shipped_model_bootstrap()


def register(v1, metrics=None, **kwargs):
    return registry.model_version_register(
        name=MODEL,
        artifact=f"artifact {metrics} {kwargs}".encode(),
        statistics={},
        metrics=metrics or {},
        sklearn_version="test",
        parent=v1,
        **kwargs,
    )


def stages() -> dict[int, str]:
    out = io.StringIO()
    call_command("models", "--json", stdout=out)
    return {row["version"]: row["stage"] for row in json.loads(out.getvalue())}


def listing() -> str:
    out = io.StringIO()
    call_command("models", stdout=out)
    return out.getvalue()


def test_a_version_never_live_is_registered_not_archived(v1):
    register(v1)
    assert stages() == {1: "live", 2: "registered"}
    registry.deployment_set_candidate(name=MODEL, version=2, percent=10)
    assert stages()[2] == "candidate"
    registry.deployment_rollback(name=MODEL)  # the canary stopped: it was never live
    assert stages() == {1: "live", 2: "registered"}


def test_archived_is_for_a_version_that_was_live_and_was_replaced(v1):
    register(v1)
    register(v1)
    registry.deployment_promote(name=MODEL, version=2)
    assert stages() == {1: "previous", 2: "live", 3: "registered"}
    registry.deployment_promote(name=MODEL, version=3)
    assert stages() == {1: "archived", 2: "previous", 3: "live"}
    registry.deployment_rollback(name=MODEL)  # back to v2; v3 was live
    registry.deployment_promote(name=MODEL, version=1)
    assert stages() == {1: "live", 2: "previous", 3: "archived"}


def test_the_accuracy_column_compares_versions_on_the_same_rows(v1):
    register(v1, RETRAINED_METRICS, created_by="retrain (drift, seed 0)")
    registry.deployment_promote(name=MODEL, version=2)
    text = listing()
    table = {
        int(m.group(1)): m.group(2)
        for m in re.finditer(r"^clf\.pickle\s+(\d+)\s+\w+\s+\d+%\s+(\S+)", text, re.M)
    }
    # The shipped version's manifest figure and v2's base-holdout figure: one set of rows.
    shipped = json.loads(
        settings.DIGITS_SHIPPED_MODEL_PATH.with_suffix(".manifest.json").read_text()
    )["metrics"]["validation"]
    assert table == {1: f"{shipped['accuracy']:.3f}", 2: "0.950"}
    assert "holdout acc" in text and f"({shipped['n']} rows, the same for every version)" in text
    # The gate's figures appear only as a pair measured on the same rows.
    assert (
        "v2 passed the validation gate against v1 on the same 642 rows (holdout plus held-out "
        "feedback, set a1b2c3d4e5f60718): 0.967 vs 0.936." in text
    )
    assert text.count("0.967") == 1


def test_a_figure_from_another_set_of_rows_is_never_in_the_column(v1):
    # A version registered with only its gate figures (no holdout score) shows '-'.
    register(v1, {"validation": RETRAINED_METRICS["validation"]})
    rows = {row["version"]: row for row in _json()}
    assert rows[2]["holdout"] is None
    assert rows[2]["gate"] == {
        "set": "a1b2c3d4e5f60718",
        "n": 642,
        "accuracy": 0.967,
        "against_version": 1,
        "against_accuracy": 0.936,
    }
    line = next(
        line for line in listing().splitlines() if line.startswith("clf.pickle") and " 2 " in line
    )
    assert re.search(r"%\s+-\s", line), line


def _json() -> list[dict]:
    out = io.StringIO()
    call_command("models", "--json", stdout=out)
    return json.loads(out.getvalue())
