"""The metrics endpoint: a bind failure is retried with backoff, reported once, never raised."""

from __future__ import annotations

from typing import Any

import pytest

from watcher.runtime.endpoint import MetricsEndpoint
from watcher.runtime.metrics import Metrics


class Squatted(Metrics):
    """serve() fails while ``busy``; counts the attempts."""

    def __init__(self) -> None:
        super().__init__()
        self.busy = True
        self.attempts = 0

    def serve(self, address: str = "", port: int = 0, *, allow_remote: bool = False) -> Any:
        self.attempts += 1
        if self.busy:
            raise OSError(98, "Address already in use")
        return Served()


class Served:
    url = "http://127.0.0.1:9158/metrics"
    closed = False

    def close(self) -> None:
        self.closed = True


def test_retries_with_backoff_reports_once_and_recovers(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    reported: list[str] = []
    m = Squatted()
    e = MetricsEndpoint(
        m, "127.0.0.1", 9158, on_failure=reported.append, clock=lambda: now[0],
        retry_initial=5, retry_max=12,
    )  # fmt: skip
    e.ensure()
    assert e.server is None
    assert m.attempts == 1
    assert reported == [
        "metrics: cannot listen on 127.0.0.1:9158: Address already in use (another process "
        "holds the port?); the watcher runs on without /metrics, trying again in 5 s"
    ]
    for t, attempts in ((4.9, 1), (5.0, 2), (14.9, 2), (15.0, 3), (26.9, 3), (27.0, 4)):
        now[0] = t
        e.ensure()
        assert m.attempts == attempts, t  # waits 5, 10, then 12 (the cap)
    assert len(reported) == 1
    m.busy = False
    now[0] = 39.0
    e.ensure()
    assert e.server is not None
    assert e.failures == 0
    assert "metrics on http://127.0.0.1:9158/metrics (after 4 failed attempt(s))" in caplog.text
    e.ensure()
    assert m.attempts == 5  # bound: no more attempts
    served = e.server
    e.close()
    assert isinstance(served, Served)
    assert served.closed
    assert e.server is None


def test_binds_at_once_when_the_port_is_free() -> None:
    m = Squatted()
    m.busy = False
    e = MetricsEndpoint(m, "::1", 9158, clock=lambda: 0.0)
    e.ensure()
    assert e.server is not None
    assert m.attempts == 1
    assert e.where == "[::1]:9158"
