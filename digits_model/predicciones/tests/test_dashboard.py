"""GET /dashboard/ in process: the latest report's maps, history, mix and traffic."""

import re

import numpy as np
import pytest

from harness.rendering import digits_data
from predicciones.services.drift import drift_report_create
from predicciones.services.registry import shipped_model_bootstrap
from predicciones.tests.factories import predictions_log

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_store")]


def test_without_reports_it_says_how_to_make_one(client):
    shipped_model_bootstrap()
    response = client.get("/dashboard/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "No drift report for clf.pickle yet" in response.text
    assert "manage.py check_drift" in response.text


def test_shows_maps_history_mix_and_traffic(client):
    version = shipped_model_bootstrap()
    X, y = digits_data()
    predictions_log(version, X[:150], predictions=y[:150])
    drift_report_create(last=150)
    predictions_log(version, 16 - X[:150], predictions=np.full(150, 8))
    drift_report_create(last=150)
    html = client.get("/dashboard/").text
    # Three 8x8 maps: drift heat map, mean training digit, mean live digit.
    assert html.count("<svg") == 4
    for label in ("Per-pixel drift heat map", "Mean training digit", "Mean live digit"):
        start = html.index(f'aria-label="{label}"')
        assert html[start : html.index("</svg>", start)].count("<rect") == 64
    assert ">drift</span>" in html and "severity critical" in html
    assert html.count("<circle") == 2  # one point per report in the history
    assert "Prediction mix" in html and "1.000" in html  # all live predictions were 8
    assert re.search(
        r"<td>v1</td><td>live</td><td class=\"num\">100%</td>"
        r"<td class=\"num\">300</td>",
        html,
    )


def test_is_self_contained(client):
    shipped_model_bootstrap()
    html = client.get("/dashboard/").text
    assert "<script" not in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)


def test_unknown_model_is_404(client):
    shipped_model_bootstrap()
    response = client.get("/dashboard/?model=nope")
    assert response.status_code == 404


def test_only_get(client):
    assert client.post("/dashboard/").status_code == 405
