"""Slow clients on loopback (slowloris): connections that send a request a byte at a time.

Used by the slow-client test (a few connections, a few seconds) and by ``make bench``'s
slowloris run (64 connections). Every connection is opened to ``127.0.0.1`` only, and stops
when the ``SlowClients`` context ends.
"""

from __future__ import annotations

import socket
import threading

#: What each slow client sends, a byte at a time: a request whose headers never end.
SLOW_REQUEST = (
    b"POST /predict/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
    b"boundary=x\r\nContent-Length: 100000\r\nX-Padding: " + b"a" * 100_000
)


class SlowClients:
    """``n`` connections to ``port``, each sending ``SLOW_REQUEST`` one byte every ``interval``
    seconds (reconnecting if the server closes it), until the context ends."""

    def __init__(self, port: int, n: int, interval: float = 0.5):
        self.port = port
        self.n = n
        self.interval = interval
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        #: Connections the server closed on a slow client (a front's header timeout).
        self.closed_by_server = 0
        self._lock = threading.Lock()

    def __enter__(self) -> SlowClients:
        for _ in range(self.n):
            thread = threading.Thread(target=self._client, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _client(self) -> None:
        while not self._stop.is_set():
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            except OSError:
                self._stop.wait(self.interval)
                continue
            with sock:
                for i in range(len(SLOW_REQUEST)):
                    if self._stop.is_set():
                        return
                    try:
                        sock.sendall(SLOW_REQUEST[i : i + 1])
                    except OSError:
                        with self._lock:
                            self.closed_by_server += 1
                        break
                    self._stop.wait(self.interval)
