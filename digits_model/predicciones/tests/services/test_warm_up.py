"""Worker warm-up: models are loaded before the first request, and a failure never stops it."""

import pytest

from predicciones import serving

pytestmark = pytest.mark.django_db


def test_warm_up_loads_the_live_version_before_any_request():
    serving.warm_up()
    loaded = serving.get_router().loaded_versions()
    assert [(v.model_name, v.version) for v in loaded] == [("clf.pickle", 1)]


def test_warm_up_logs_a_failure_and_returns(monkeypatch, caplog):
    def broken_routes(self):
        raise RuntimeError("database unreachable")

    monkeypatch.setattr(serving.Router, "routes", broken_routes)
    serving.warm_up()  # does not raise
    assert "warm-up failed" in caplog.text
