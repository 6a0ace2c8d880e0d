"""Helpers for tests that must see several gunicorn workers at work (JSON access log on)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests


def access_lines(srv) -> list[dict]:
    """The server's access-log lines (it runs with DIGITS_LOG_JSON=1, DIGITS_LOG_LEVEL=INFO)."""
    lines = []
    for raw in Path(srv.log_path).read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            document = json.loads(raw)
            if document.get("logger") == "predicciones.access":
                lines.append(document)
    return lines


def wait_until_every_worker_answers(srv, timeout: float = 60) -> None:
    """/health/ answers as soon as one worker is up; the others may still be importing."""
    deadline = time.monotonic() + timeout
    workers = len(srv.worker_pids())
    with ThreadPoolExecutor(max_workers=4) as pool:
        while time.monotonic() < deadline:
            list(pool.map(lambda _: requests.get(srv.url("/health/live/"), timeout=10), range(8)))
            if len({line["pid"] for line in access_lines(srv)}) >= workers:
                return
            time.sleep(0.5)
    pytest.fail(f"not every worker answered within {timeout}s:\n{srv.log_tail()}")
