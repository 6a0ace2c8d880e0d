"""Fixtures shared by the whole suite."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import uuid

import numpy as np
import pytest

from harness.rendering import draw_digit_image
from harness.servers import ServerProcess
from predicciones.ml.decoding import Header

#: In CI every prerequisite (Chromium, PostgreSQL, moto) must be there: fail, don't skip.
REQUIRE_ALL = os.environ.get("DIGITS_REQUIRE_ALL") == "1"


#: The header of an upload that counts as a large decode (2000 x 2000 decoded at full size).
LARGE_HEADER = Header(format="PNG", width=2000, height=2000, full_decode=True, n_bytes=10_000)


@contextlib.contextmanager
def decode_slot_held(settings):
    """This process's one large-decode slot (``DIGITS_DECODE_CONCURRENCY=1``), held by another
    thread for the block; a large upload waits 0.05 s for it, then gets 503."""
    from predicciones.services.predictions import large_decode_slot

    settings.DIGITS_DECODE_CONCURRENCY = 1
    settings.DIGITS_DECODE_WAIT = 0.05
    taken, release = threading.Event(), threading.Event()

    def hold():
        with large_decode_slot(LARGE_HEADER):
            taken.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert taken.wait(30)
        yield
    finally:
        release.set()
        holder.join(30)


def require(condition: bool, reason: str) -> None:
    """Skip a test whose real part is missing here, or fail when CI demands everything."""
    if condition:
        return
    if REQUIRE_ALL:
        pytest.fail(f"prerequisite missing (DIGITS_REQUIRE_ALL=1): {reason}")
    pytest.skip(reason)


@pytest.fixture
def png_seven() -> bytes:
    return draw_digit_image("7")


@pytest.fixture
def random_query_id() -> uuid.UUID:
    return uuid.uuid4()


@pytest.fixture(scope="session")
def server():
    """One real gunicorn server (2 workers, SQLite) shared by the read-mostly e2e tests."""
    with ServerProcess(workers=2) as srv:
        yield srv


@pytest.fixture
def fresh_server_factory():
    """Start servers that belong to one test (they are torn down after it)."""
    started: list[ServerProcess] = []

    def start(**kwargs) -> ServerProcess:
        srv = ServerProcess(**kwargs)
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.cleanup()


@pytest.fixture
def own_store(settings, tmp_path):
    """This test's own local artifact folder (yielded), in place of the suite's."""
    from predicciones import storage

    settings.DIGITS_ARTIFACTS_DIR = tmp_path / "artifacts"
    storage._store_for.cache_clear()
    yield tmp_path / "artifacts"
    storage._store_for.cache_clear()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def chromium_paths() -> tuple[str | None, str | None]:
    return shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(autouse=True)
def _fresh_counters():
    """Each test starts with no rate-limit or failed-authentication counts from another."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _fresh_router():
    """Each test starts with a router that has not cached another test's registry rows."""
    from predicciones.serving import reset_router

    reset_router()
    yield
    reset_router()


@pytest.fixture
def postgres_url():
    """A fresh, empty PostgreSQL database on the server named by DIGITS_TEST_POSTGRES_URL.

    That variable points at a maintenance database of a real PostgreSQL server (``.ci/run``
    starts Debian's PostgreSQL on loopback and sets it); the database is dropped afterwards.
    """
    admin_url = os.environ.get("DIGITS_TEST_POSTGRES_URL", "")
    require(bool(admin_url), "DIGITS_TEST_POSTGRES_URL is not set (no PostgreSQL server)")
    import psycopg

    name = f"digits_e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin_url.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- S3 (a real S3-protocol server on loopback) ----------------------------------------------
@pytest.fixture(scope="session")
def moto_server():
    """One ``moto_server`` process for the session; tests isolate themselves by bucket."""
    from harness.s3 import MotoServer, moto_server_path

    require(moto_server_path() is not None, "moto_server is not installed (moto[server])")
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def s3_store(moto_server, settings, monkeypatch):
    """Point this process's artifact store at a fresh bucket on the moto server.

    Yields a namespace with ``bucket``, ``server`` and ``env`` (for subprocesses).
    """
    from types import SimpleNamespace

    from predicciones import storage

    bucket = moto_server.create_bucket()
    env = moto_server.env(bucket)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings.DIGITS_S3_BUCKET = bucket
    settings.DIGITS_S3_PREFIX = env["DIGITS_S3_PREFIX"]
    storage._store_for.cache_clear()
    yield SimpleNamespace(bucket=bucket, server=moto_server, env=env)
    storage._store_for.cache_clear()
