"""A small closed-loop load generator for end-to-end tests (threads + requests sessions)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import requests


@dataclass
class Sample:
    sent: float
    received: float
    status: int | None
    version: int | None = None
    query_id: str | None = None
    error: str | None = None


@dataclass
class LoadRun:
    """``clients`` threads posting ``images`` to ``url`` until ``stop()``."""

    url: str
    images: list[bytes]
    clients: int = 8
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._client, args=(i,), daemon=True)
            for i in range(self.clients)
        ]

    def start(self) -> LoadRun:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> list[Sample]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        return self.samples

    def _client(self, index: int) -> None:
        session = requests.Session()
        n = index
        while not self._stop.is_set():
            image = self.images[n % len(self.images)]
            n += self.clients
            sent = time.monotonic()
            try:
                response = session.post(self.url, files={"image": ("digit.png", image)}, timeout=30)
                body = response.json()
                sample = Sample(
                    sent,
                    time.monotonic(),
                    response.status_code,
                    body.get("model_version"),
                    body.get("query_id"),
                )
            except (requests.RequestException, ValueError) as exc:
                sample = Sample(sent, time.monotonic(), None, error=repr(exc))
            with self._lock:
                self.samples.append(sample)

    def count_since(self, moment: float) -> int:
        with self._lock:
            return sum(1 for s in self.samples if s.sent >= moment)

    def wait_for(self, n: int, since: float, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.count_since(since) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {n} requests in {timeout}s")
            time.sleep(0.1)
