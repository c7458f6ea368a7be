"""Prometheus metrics: what the watcher has seen, for a fleet's Prometheus to scrape.

:class:`Metrics` holds its own registry. Most values are taken, at scrape
time, from the last status snapshot (the dict :meth:`watcher.daemon.Watcher.status`
builds, handed to :meth:`Metrics.update_from_status`); trips and responder
outcomes are counted as they happen (:meth:`Metrics.record_trip`,
:meth:`Metrics.record_outcome`). :meth:`Metrics.serve` exposes them over HTTP,
on loopback unless told otherwise.

Keys read from the status dict (all optional; a missing one is simply not
exported): ``lines``, ``events``, ``unparsed``, ``log_loss.{reports,lines_lost}``,
``time_steps.back``, ``state``, ``last_event_time``, ``queue_depth``, ``backpressure_waits``,
``correlation.{open,evicted,expired}``, ``sources.<name>.{checkpoint_age_seconds,
read_errors}``, and -- not in ``Watcher.status()`` itself, to be added through its
``extra_status`` -- ``rules.<name>.{window_count,matches,trip_at,warn_at}``
(see :func:`rule_status`) and ``held`` (an int or a list of queue IDs).
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from watcher.core.errors import ConfigError
from watcher.core.pipeline import Pipeline

DEFAULT_ADDRESS = "127.0.0.1"
DEFAULT_PORT = 9158
PREFIX = "stormwatch"


class MetricsError(ConfigError):
    """The metrics endpoint cannot be served as asked."""


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def rule_status(pipeline: Pipeline) -> dict[str, dict[str, int]]:
    """Per rule: the window count now (for ``group_by`` rules: the largest group's),
    matches so far, and the thresholds; for ``Watcher(extra_status=...)`` as
    ``{"rules": rule_status(pipeline)}``.
    """
    counts = pipeline.detector.window_counts(pipeline.last_time or 0)
    return {
        name: {
            "window_count": counts.get(name, 0),
            "matches": s.matches,
            "trip_at": s.rule.trip_at or 0,
            "warn_at": s.rule.warn_at or 0,
        }
        for name, s in pipeline.summaries.items()
    }


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


def _timestamp(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    return dt.timestamp() if dt.tzinfo is not None else None


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _add(fam: CounterMetricFamily | GaugeMetricFamily, label: str, value: Any) -> None:
    v = _num(value)
    if v is not None:
        fam.add_metric([str(label)], v)


class _StatusCollector(Collector):
    """Turns the last status snapshot into metric families at scrape time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status: Mapping[str, Any] | None = None

    def set(self, status: Mapping[str, Any]) -> None:
        with self._lock:
            self._status = status

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            st = self._status
        if st is None:
            return []
        return list(self._families(st))

    def _families(self, st: Mapping[str, Any]) -> Iterator[Metric]:
        def counter(name: str, doc: str, value: Any) -> Iterator[Metric]:
            v = _num(value)
            if v is not None:
                yield CounterMetricFamily(f"{PREFIX}_{name}", doc, value=v)

        def gauge(name: str, doc: str, value: Any) -> Iterator[Metric]:
            v = _num(value)
            if v is not None:
                yield GaugeMetricFamily(f"{PREFIX}_{name}", doc, value=v)

        yield from counter("lines_read", "Log lines (and journal records) read.", st.get("lines"))
        yield from counter("events", "Postfix events recognised.", st.get("events"))
        yield from counter(
            "unparsed_lines",
            "Postfix lines a rule could count that could not be parsed (skipped).",
            st.get("unparsed"),
        )
        loss = _dict(st.get("log_loss"))
        yield from counter(
            "log_loss_lines",
            "Lines the syslog daemon or journald reported dropping (rate limiting).",
            loss.get("lines_lost"),
        )
        yield from counter(
            "log_loss_reports", "Rate-limit reports seen in the log.", loss.get("reports")
        )
        yield from counter(
            "log_time_steps_back",
            "Times the log's time went back beyond the shortest rule window (windows re-based).",
            _dict(st.get("time_steps")).get("back"),
        )
        if "state" in st:
            yield from gauge(
                "tripped", "1 while the kill switch is tripped, else 0.", st["state"] == "tripped"
            )
        held = st.get("held")
        if isinstance(held, list | tuple):
            held = len(held)
        yield from gauge("held_messages", "Queue IDs the trip put on hold.", held)
        yield from gauge(
            "last_event_timestamp_seconds",
            "Log time of the newest Postfix event (Unix time).",
            _timestamp(st.get("last_event_time")),
        )
        yield from gauge("queue_depth", "Batches waiting for the pipeline.", st.get("queue_depth"))
        yield from counter(
            "backpressure_waits",
            "Times a reader waited because the pipeline was behind.",
            st.get("backpressure_waits"),
        )
        corr = _dict(st.get("correlation"))
        yield from gauge("open_queue_ids", "Queue IDs being joined.", corr.get("open"))
        yield from counter(
            "evicted_queue_ids", "Queue IDs evicted to bound memory.", corr.get("evicted")
        )
        yield from self._fleet(_dict(st.get("fleet")))
        yield from self._labelled(st)

    @staticmethod
    def _fleet(fleet: Mapping[str, Any]) -> Iterator[Metric]:
        """Shared windows (watcher.fleet): nothing without a [fleet] url and a shared rule."""
        if not fleet:
            return
        up = GaugeMetricFamily(
            f"{PREFIX}_fleet_redis_up", "1 while the fleet's Redis answers, else 0."
        )
        up.add_metric([], float(fleet.get("redis") == "up"))
        yield up
        for name, doc, key in (
            ("fleet_shared_matches", "Shared rules' matches sent to the fleet.", "shared"),
            ("fleet_unshared_matches", "Matches not shared: the queue was full.", "not_shared"),
            ("fleet_failures", "Redis calls that failed or timed out.", "failures"),
        ):
            v = _num(fleet.get(key))
            if v is not None:
                yield CounterMetricFamily(f"{PREFIX}_{name}", doc, value=v)
        v = _num(fleet.get("queued"))
        if v is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_fleet_queued_matches", "Matches waiting to be shared.", value=v
            )
        counts = _dict(fleet.get("rules"))
        if counts:
            window = GaugeMetricFamily(
                f"{PREFIX}_rule_fleet_window_count",
                "The fleet's count in a shared rule's window, as last read (largest group).",
                labels=["rule"],
            )
            for name, n in sorted(counts.items()):
                _add(window, name, n)
            yield window

    def _labelled(self, st: Mapping[str, Any]) -> Iterator[Metric]:
        rules = _dict(st.get("rules"))
        if rules:
            window = GaugeMetricFamily(
                f"{PREFIX}_rule_window_count",
                "Matches in the rule's sliding window now (group_by rules: the largest group).",
                labels=["rule"],
            )
            matches = CounterMetricFamily(
                f"{PREFIX}_rule_matches", "Lines the rule counted.", labels=["rule"]
            )
            trip_at = GaugeMetricFamily(
                f"{PREFIX}_rule_trip_at", "The rule's trip threshold (0: none).", labels=["rule"]
            )
            for name, r in sorted(rules.items()):
                values = _dict(r)
                _add(window, name, values.get("window_count"))
                _add(matches, name, values.get("matches"))
                _add(trip_at, name, values.get("trip_at"))
            yield from (window, matches, trip_at)
        sources = _dict(st.get("sources"))
        if sources:
            age = GaugeMetricFamily(
                f"{PREFIX}_checkpoint_age_seconds",
                "Seconds since the source's position was last saved.",
                labels=["source"],
            )
            errors = CounterMetricFamily(
                f"{PREFIX}_source_read_errors", "Read errors per source.", labels=["source"]
            )
            rotated = CounterMetricFamily(
                f"{PREFIX}_source_rotated_lines",
                "Lines read from a file after it was rotated away (a writer still had it open).",
                labels=["source"],
            )
            for name, src in sorted(sources.items()):
                values = _dict(src)
                _add(age, name, values.get("checkpoint_age_seconds"))
                _add(errors, name, values.get("read_errors"))
                _add(rotated, name, values.get("rotated_lines"))
            yield from (age, errors, rotated)


@dataclass(slots=True)
class MetricsServer:
    """A running endpoint; :meth:`close` stops it."""

    address: str
    port: int
    _server: Any
    _thread: threading.Thread

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}/metrics"

    def close(self, timeout: float = 5.0) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout)


class Metrics:
    """stormwatch's metrics, in ``registry`` (a new one by default)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._status = _StatusCollector()
        self.registry.register(self._status)
        self.trips = Counter(
            f"{PREFIX}_trips",
            "Times a rule tripped the switch (since this process started).",
            ["rule"],
            registry=self.registry,
        )
        self.outcomes = Counter(
            f"{PREFIX}_responder_outcomes",
            "Responder outcomes, by action kind and result (ok or failed).",
            ["kind", "result"],
            registry=self.registry,
        )

    def update_from_status(self, status: Mapping[str, Any]) -> None:
        """Take a :meth:`Watcher.status` snapshot (exported at the next scrape)."""
        self._status.set(dict(status))

    def record_trip(self, rule: str) -> None:
        self.trips.labels(rule=rule).inc()

    def record_outcome(self, kind: str, ok: bool) -> None:
        self.outcomes.labels(kind=kind, result="ok" if ok else "failed").inc()

    def serve(
        self,
        address: str = DEFAULT_ADDRESS,
        port: int = DEFAULT_PORT,
        *,
        allow_remote: bool = False,
    ) -> MetricsServer:
        """Serve ``/metrics`` over HTTP from a daemon thread (``port=0``: any free port).

        Raises MetricsError for a non-loopback address unless ``allow_remote``
        (the counters name rules and log sources; put a firewall or a proxy in
        front), and OSError if the address cannot be bound.
        """
        if not allow_remote and not is_loopback(address):
            raise MetricsError(
                f"metrics address {address!r} is not loopback: refusing to serve metrics "
                "to the network unless remote access is allowed explicitly"
            )
        server, thread = start_http_server(port, addr=address, registry=self.registry)
        return MetricsServer(address, int(server.server_port), server, thread)
