"""A real database outage under a real server: PostgreSQL loses the service's database (it is
dropped, its connections closed) while gunicorn is serving. Every endpoint answers 503 or
keeps working; none answers 500."""

import os

import pytest
import requests

from harness.rendering import draw_digit_image

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN_TOKEN = "outage-test-admin-token"


def test_every_endpoint_answers_503_not_500_when_postgresql_goes_away(
    postgres_url, fresh_server_factory
):
    import psycopg

    server = fresh_server_factory(
        workers=1, database_url=postgres_url, env={"DIGITS_ADMIN_TOKEN": ADMIN_TOKEN}
    )
    image = {"image": ("seven.png", draw_digit_image("7"))}
    answer = requests.post(server.url("/predict/"), files=image, timeout=30)
    assert answer.status_code == 200
    query_id = answer.json()["query_id"]

    name = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(os.environ["DIGITS_TEST_POSTGRES_URL"], autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')

    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    calls = {
        "predict": lambda: requests.post(server.url("/predict/"), files=image, timeout=30),
        "feedback": lambda: requests.post(
            server.url("/feedback/"), json={"query_id": query_id, "label": 7}, timeout=30
        ),
        "models": lambda: requests.get(server.url("/models/"), timeout=30),
        "health": lambda: requests.get(server.url("/health/"), timeout=30),
        "admin": lambda: requests.post(
            server.url("/admin/models/clf.pickle/rollback/"), headers=auth, timeout=30
        ),
    }
    for endpoint, call in calls.items():
        response = call()
        assert response.status_code == 503, (endpoint, response.text[:300])
        assert response.headers["Content-Type"].startswith("application/json"), endpoint
    dashboard = requests.get(server.url("/dashboard/"), timeout=30)
    assert dashboard.status_code == 503
    assert dashboard.headers["Content-Type"].startswith("text/html")
    assert "Temporarily unavailable" in dashboard.text
    assert requests.get(server.url("/health/live/"), timeout=30).status_code == 200
    assert requests.get(server.url("/"), timeout=30).status_code == 200
    assert requests.get(server.url("/metrics"), timeout=30).status_code == 200
