"""The artifact store when S3 misbehaves on the wire: a server paused with SIGSTOP (connections
accepted, never answered), a server that drops the connection mid-request, a listener whose
backlog is full (connect never completes), a refused port. Every kind of botocore failure is
a StoreError with a reason that names no bucket or endpoint; none is an AttributeError."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading

import pytest
from botocore import exceptions as boto

from harness.processes import free_port
from harness.s3 import CREDENTIALS, MotoServer, moto_server_path
from predicciones import readiness, storage

from .conftest import require


@pytest.fixture
def own_moto():
    """A moto_server of this test's own, so it can be paused without touching the others."""
    require(moto_server_path() is not None, "moto_server is not installed (moto[server])")
    server = MotoServer().start()
    yield server
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.group.process.pid, signal.SIGCONT)
    server.stop()


def s3_store_at(endpoint: str, monkeypatch, bucket: str = "digits-faults") -> storage.S3Store:
    """An S3Store as the service builds it, pointed at ``endpoint``; its data client gets the
    probe's short timeouts so each failing call takes a second or two, not twenty."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    store = storage.S3Store(bucket, "digits")
    store.__dict__["_client"] = store._probe_client  # same config: 1 s timeouts, one attempt
    return store


def every_call(store: storage.S3Store, tmp_path):
    return {
        "ping": store.ping,
        "get_bytes": lambda: store.get_bytes("models/x/v1/model.pickle"),
        "put_bytes": lambda: store.put_bytes("models/x/v1/model.pickle", b"abc"),
        "get_file": lambda: store.get_file("models/x/v1/model.pickle", tmp_path / "out"),
        "put_file": lambda: store.put_file("models/x/v1/model.pickle", __file__),
        "exists": lambda: store.exists("models/x/v1/model.pickle"),
        "delete": lambda: store.delete("models/x/v1/model.pickle"),
    }


def assert_store_errors(store, tmp_path, reason: str) -> None:
    for name, call in every_call(store, tmp_path).items():
        with pytest.raises(storage.StoreError) as info:
            call()
        assert not isinstance(info.value, storage.ObjectMissingError), name
        assert info.value.reason == reason, (name, info.value.reason, str(info.value))
        assert "\n" not in str(info.value), name


def test_a_paused_server_is_a_timeout_for_every_call(own_moto, monkeypatch, tmp_path):
    own_moto.create_bucket("digits-faults")
    store = s3_store_at(own_moto.endpoint, monkeypatch)
    store.ping()
    os.killpg(own_moto.group.process.pid, signal.SIGSTOP)
    try:
        assert_store_errors(store, tmp_path, "no answer in time")
    finally:
        os.killpg(own_moto.group.process.pid, signal.SIGCONT)
    store.ping()  # and back once it answers again


class DroppingServer:
    """Accepts a connection, reads the request, closes without a word."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with contextlib.suppress(OSError):
                conn.recv(65536)
            conn.close()

    def close(self):
        self.listener.close()


def test_a_dropped_connection_is_a_connection_failure(monkeypatch, tmp_path):
    server = DroppingServer()
    try:
        store = s3_store_at(f"http://127.0.0.1:{server.port}", monkeypatch)
        assert_store_errors(store, tmp_path, "connection failed")
    finally:
        server.close()


def test_a_connect_that_never_completes_is_a_timeout(monkeypatch, tmp_path):
    # A listener that never accepts, its backlog filled: the kernel drops further SYNs.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    try:
        store = s3_store_at(f"http://127.0.0.1:{port}", monkeypatch)
        with pytest.raises(storage.StoreError) as info:
            store.ping()
        assert info.value.reason == "no answer in time"
    finally:
        for sock in [*fillers, listener]:
            sock.close()


def test_a_refused_port_is_a_connection_failure(monkeypatch, tmp_path):
    store = s3_store_at(f"http://127.0.0.1:{free_port()}", monkeypatch)
    assert_store_errors(store, tmp_path, "connection failed")


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (boto.ReadTimeoutError(endpoint_url="http://x"), "timeout"),
        (boto.ConnectTimeoutError(endpoint_url="http://x"), "timeout"),
        (boto.EndpointConnectionError(endpoint_url="http://x"), "connection"),
        (boto.ConnectionClosedError(endpoint_url="http://x"), "connection"),
        (boto.NoCredentialsError(), "denied"),
        (boto.ClientError({"Error": {"Code": "NoSuchKey"}}, "GetObject"), "missing"),
        (boto.ClientError({"Error": {"Code": "404"}}, "HeadObject"), "missing"),
        (boto.ClientError({"Error": {"Code": "NoSuchBucket"}}, "GetObject"), "no_bucket"),
        (boto.ClientError({"Error": {"Code": "AccessDenied"}}, "GetObject"), "denied"),
        (boto.ClientError({"Error": {"Code": "SlowDown"}}, "PutObject"), "error"),
        (boto.ClientError({}, "GetObject"), "error"),  # an answer without an error body
    ],
)
def test_every_botocore_failure_is_classified(exc, kind):
    assert storage.s3_failure(exc).kind == kind


def test_a_response_attribute_set_to_none_is_not_an_attribute_error():
    exc = boto.ReadTimeoutError(endpoint_url="http://x")
    exc.response = None  # what some botocore errors carry
    assert storage.s3_failure(exc).kind == "timeout"


def test_the_probe_answers_without_waiting_while_the_store_hangs(own_moto, monkeypatch):
    """A paused server: the first probe of a process waits at most its bound and says so;
    later calls answer from the cached failure at once, and the gauge stays present."""
    own_moto.create_bucket("digits-faults")
    store = s3_store_at(own_moto.endpoint, monkeypatch)
    probe = readiness.StoreProbe(store)
    assert probe.state() == "ok"
    os.killpg(own_moto.group.process.pid, signal.SIGSTOP)
    try:
        stale = probe.state(max_age=0)  # refreshes in the background, answers at once
        assert stale == "ok"
        probe._done.wait(timeout=30)
        assert probe.state(max_age=60).startswith("unreachable: ")
        fresh = readiness.StoreProbe(store)  # a new process: nothing cached yet
        state = fresh.state()
        assert state.startswith("unreachable: "), state
        assert own_moto.endpoint not in state and "digits-faults" not in state
    finally:
        os.killpg(own_moto.group.process.pid, signal.SIGCONT)
    probe.state(max_age=0)  # the next refresh finds it back
    probe._done.wait(timeout=30)
    assert probe.state(max_age=60) == "ok"
