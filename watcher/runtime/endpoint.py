"""Keep the metrics endpoint up: a port that cannot be bound is retried, never fatal.

Any local user can listen on 127.0.0.1:9158 before the watcher starts. If that
stopped ``run``, squatting a port would switch the kill switch off (and the
unit's ``RestartPreventExitStatus=2`` would keep it off). So a bind failure is
logged, reported once through ``on_failure`` (the live watcher pages a warning),
and tried again with backoff; the first success after failures is logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from watcher.runtime.metrics import Metrics, MetricsServer

log = logging.getLogger(__name__)

RETRY_INITIAL = 5.0
RETRY_MAX = 300.0


class MetricsEndpoint:
    """``/metrics`` served from ``metrics`` on ``address:port``; :meth:`ensure` from every tick."""

    def __init__(
        self,
        metrics: Metrics,
        address: str,
        port: int,
        *,
        allow_remote: bool = False,
        on_failure: Callable[[str], None] = lambda _msg: None,
        clock: Callable[[], float] = time.monotonic,
        retry_initial: float = RETRY_INITIAL,
        retry_max: float = RETRY_MAX,
    ) -> None:
        self.metrics = metrics
        self.address = address
        self.port = port
        self.allow_remote = allow_remote
        self.server: MetricsServer | None = None
        self.failures = 0
        self._on_failure = on_failure
        self._clock = clock
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._backoff = retry_initial
        self._next = 0.0

    @property
    def where(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"

    def ensure(self) -> None:
        """Bind if not bound and a retry is due. Never raises for a bind failure."""
        if self.server is not None or self._clock() < self._next:
            return
        try:
            self.server = self.metrics.serve(
                self.address, self.port, allow_remote=self.allow_remote
            )
        except OSError as exc:
            self.failures += 1
            retry = self._backoff
            self._next = self._clock() + retry
            self._backoff = min(self._backoff * 2, self._retry_max)
            message = (
                f"metrics: cannot listen on {self.where}: {exc.strerror or exc} (another "
                f"process holds the port?); the watcher runs on without /metrics, "
                f"trying again in {retry:g} s"
            )
            log.error("%s", message)
            if self.failures == 1:
                self._on_failure(message)
            return
        after = f" (after {self.failures} failed attempt(s))" if self.failures else ""
        log.warning("metrics on %s%s", self.server.url, after)
        self.failures = 0
        self._backoff = self._retry_initial

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
