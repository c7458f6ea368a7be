"""The metrics endpoint for real: an HTTP server on loopback, scraped while a watcher
follows a real log file through a storm."""

from __future__ import annotations

import socket
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests import logshapes as L
from tests.integration.harness.requires import wait_for
from watcher.core.decide import Action
from watcher.core.parse import Parser
from watcher.core.pipeline import Pipeline, Where
from watcher.runtime.daemon import Watcher
from watcher.runtime.metrics import Metrics, MetricsServer, rule_status
from watcher.runtime.rulefiles import load_rules
from watcher.sources.choose import build_source

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(server: MetricsServer) -> Samples:
    with urllib.request.urlopen(server.url, timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


@pytest.fixture
def metrics() -> Iterator[tuple[Metrics, MetricsServer]]:
    m = Metrics()
    server = m.serve("127.0.0.1", 0)
    try:
        yield m, server
    finally:
        server.close()


def test_serves_over_loopback_and_stops(metrics: tuple[Metrics, MetricsServer]) -> None:
    m, server = metrics
    m.update_from_status({"lines": 42, "state": "armed"})
    m.record_outcome("hold-bounces", True)
    got = scrape(server)
    assert got[("stormwatch_lines_read_total", ())] == 42
    assert got[("stormwatch_tripped", ())] == 0
    assert (
        got[("stormwatch_responder_outcomes_total", (("kind", "hold-bounces"), ("result", "ok")))]
        == 1
    )
    assert server.address == "127.0.0.1"
    assert server.port > 0
    server.close()
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", server.port), timeout=2),
    ):
        pass


def test_serves_on_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python")
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    m = Metrics()
    server = m.serve("::1", 0)
    try:
        m.record_trip("backscatter")
        assert server.url.startswith("http://[::1]:")
        assert scrape(server)[("stormwatch_trips_total", (("rule", "backscatter"),))] == 1
    finally:
        server.close()


def test_a_live_watcher_through_a_storm_is_scraped(
    tmp_path: Path, metrics: tuple[Metrics, MetricsServer]
) -> None:
    """Wired as ``stormwatch run`` will be: status -> metrics on every tick, trips counted
    as the pipeline decides them, the rules' windows in the status."""
    m, server = metrics
    log = tmp_path / "mail.log"
    log.write_text("")

    def on_actions(actions: list[Action], where: Where) -> None:
        if any(a.severity == "trip" for a in actions):
            m.record_trip(actions[0].rule)

    pipeline = Pipeline.build(
        [r.rule for r in load_rules()], Parser(reference=L.REFERENCE), on_actions=on_actions
    )
    source = build_source(f"file:{log}", tmp_path / "state")
    holder: list[Watcher] = []

    def tick() -> None:
        m.update_from_status(holder[0].status())

    watcher = Watcher(
        pipeline,
        [source],
        state_dir=tmp_path,
        status_every=0.05,
        poll_timeout=0.05,
        on_tick=tick,
        extra_status=lambda: {"rules": rule_status(pipeline)},
    )
    holder.append(watcher)
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,), name="watcher")
    thread.start()
    try:
        # the source is open once the first status is out: from then on every line counts
        wait_for(
            lambda: ("stormwatch_lines_read_total", ()) in scrape(server),
            10,
            "the first status on the endpoint",
        )
        lines: list[str] = []
        for i in range(12):
            lines += L.storm_message(100 + i / 4, i, "list-bounces@lists.example.org")
        with log.open("a") as f:
            f.write("".join(f"{line}\n" for line in lines))

        def all_read() -> Samples | None:
            s = scrape(server)
            return s if s.get(("stormwatch_lines_read_total", ())) == len(lines) else None

        got = wait_for(
            all_read,
            10,
            f"{len(lines)} lines read on the endpoint",
            seen=lambda: scrape(server).get(("stormwatch_lines_read_total", ())),
        )
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert got is not None
    assert got[("stormwatch_tripped", ())] == 1
    assert got[("stormwatch_trips_total", (("rule", "forwarding-loop"),))] == 1
    assert got[("stormwatch_rule_matches_total", (("rule", "backscatter"),))] == 12
    assert got[("stormwatch_rule_window_count", (("rule", "backscatter"),))] == 12
    assert got[("stormwatch_events_total", ())] == pipeline.events
    source_label = (("source", source.name),)
    assert 0 <= got[("stormwatch_checkpoint_age_seconds", source_label)] < 10
