"""Metrics: the registry's text from a real watcher's status, trips and outcomes, loopback."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests import logshapes as L
from watcher.core.parse import Parser
from watcher.core.pipeline import Pipeline
from watcher.runtime.daemon import Watcher
from watcher.runtime.metrics import Metrics, MetricsError, is_loopback, rule_status
from watcher.runtime.rulefiles import load_rules
from watcher.sources.base import Item


class IdleSource:
    """A source that is never read: status() only asks for its counters."""

    name = "file:/var/log/mail.log"

    def open(self) -> None: ...

    def poll(self, timeout: float) -> list[Item]:
        return []

    def commit(self, position: object) -> None: ...

    def close(self) -> None: ...

    def counters(self) -> dict[str, int]:
        return {"lines": 0, "rotations": 1}


def samples(m: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``{(sample name, sorted labels): value}`` from the exposition text."""
    text = generate_latest(m.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def _storm_pipeline(n: int) -> Pipeline:
    lines: list[str] = []
    for i in range(n):
        lines += L.storm_message(100 + i / 5, i, "list-bounces@lists.example.org")
    p = Pipeline.build([r.rule for r in load_rules()], Parser(reference=L.REFERENCE))
    p.run(lines, "mail.log")
    return p


@pytest.fixture
def status(tmp_path: Path) -> dict[str, object]:
    """What a real Watcher reports after 6 storm messages, plus the rules' windows."""
    p = _storm_pipeline(6)
    w = Watcher(
        p,
        [IdleSource()],
        state_dir=tmp_path,
        extra_status=lambda: {"rules": rule_status(p), "held": ["2A0000000B"]},
        clock=lambda: 100.0,
        wall=lambda: 1_318_787_572.0,
    )
    return w.status()


def test_status_becomes_counters_and_gauges(status: dict[str, object]) -> None:
    m = Metrics()
    m.update_from_status(status)
    got = samples(m)
    assert got[("stormwatch_lines_read_total", ())] == 0  # IdleSource read nothing itself
    assert got[("stormwatch_events_total", ())] == status["events"]
    assert got[("stormwatch_unparsed_lines_total", ())] == 0
    assert got[("stormwatch_log_loss_lines_total", ())] == 0
    assert got[("stormwatch_tripped", ())] == 1  # forwarding-loop trips on the 2nd loop
    assert got[("stormwatch_held_messages", ())] == 1
    assert got[("stormwatch_last_event_timestamp_seconds", ())] == pytest.approx(
        L.micros(100 + 5 / 5 + 0.2) // 1_000_000
    )
    rule = (("rule", "forwarding-loop"),)
    assert got[("stormwatch_rule_window_count", rule)] == 6
    assert got[("stormwatch_rule_matches_total", rule)] == 6
    assert got[("stormwatch_rule_trip_at", rule)] == 2
    assert got[("stormwatch_rule_window_count", (("rule", "backscatter"),))] == 6
    src = (("source", "file:/var/log/mail.log"),)
    assert ("stormwatch_checkpoint_age_seconds", src) not in got  # never committed: no age
    assert got[("stormwatch_source_read_errors_total", src)] == 0


def test_checkpoint_age_and_read_errors_per_source() -> None:
    m = Metrics()
    m.update_from_status(
        {
            "state": "armed",
            "sources": {
                "file:/var/log/mail.log": {
                    "checkpoint_age_seconds": 0.4,
                    "read_errors": 2,
                    "rotated_lines": 7,
                },
                "journal": {"checkpoint_age_seconds": 12.5},
            },
        }
    )
    got = samples(m)
    assert got[("stormwatch_tripped", ())] == 0
    assert got[("stormwatch_checkpoint_age_seconds", (("source", "journal"),))] == 12.5
    assert (
        got[("stormwatch_checkpoint_age_seconds", (("source", "file:/var/log/mail.log"),))] == 0.4
    )
    assert (
        got[("stormwatch_source_read_errors_total", (("source", "file:/var/log/mail.log"),))] == 2
    )
    assert (
        got[("stormwatch_source_rotated_lines_total", (("source", "file:/var/log/mail.log"),))] == 7
    )
    assert ("stormwatch_source_rotated_lines_total", (("source", "journal"),)) not in got
    assert not [k for k in got if k[0].startswith("stormwatch_events_by_kind")]  # no producer


def test_the_latest_status_wins_and_missing_keys_are_not_exported() -> None:
    m = Metrics()
    assert not [k for k in samples(m) if k[0].startswith("stormwatch_lines")]
    m.update_from_status({"lines": 10, "events": "not a number", "last_event_time": None})
    m.update_from_status({"lines": 25})
    got = samples(m)
    assert got[("stormwatch_lines_read_total", ())] == 25
    assert ("stormwatch_events_total", ()) not in got
    assert ("stormwatch_tripped", ()) not in got


def test_trips_and_outcomes_are_counted() -> None:
    m = Metrics()
    m.record_trip("backscatter")
    m.record_trip("backscatter")
    m.record_outcome("freeze-postfix", True)
    m.record_outcome("notify", False)
    got = samples(m)
    assert got[("stormwatch_trips_total", (("rule", "backscatter"),))] == 2
    ok = (("kind", "freeze-postfix"), ("result", "ok"))
    failed = (("kind", "notify"), ("result", "failed"))
    assert got[("stormwatch_responder_outcomes_total", ok)] == 1
    assert got[("stormwatch_responder_outcomes_total", failed)] == 1


def test_two_instances_have_their_own_registries() -> None:
    a, b = Metrics(), Metrics()
    a.record_trip("x")
    assert ("stormwatch_trips_total", (("rule", "x"),)) not in samples(b)


def test_update_is_safe_from_another_thread() -> None:
    m = Metrics()
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            m.update_from_status({"lines": n, "rules": {"r": {"window_count": n}}})

    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(200):
            got = samples(m)
            if ("stormwatch_lines_read_total", ()) in got:
                assert (
                    got[("stormwatch_lines_read_total", ())]
                    == got[("stormwatch_rule_window_count", (("rule", "r"),))]
                )
    finally:
        stop.set()
        t.join()


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.53", "::1", "[::1]", "localhost"])
def test_loopback_addresses(address: str) -> None:
    assert is_loopback(address)


@pytest.mark.parametrize(
    "address", ["0.0.0.0", "::", "192.0.2.1", "2001:db8::1", "example.com", ""]
)
def test_serve_refuses_a_non_loopback_address(address: str) -> None:
    assert not is_loopback(address)
    with pytest.raises(MetricsError, match="not loopback"):
        Metrics().serve(address, 0)


def test_a_step_back_in_log_time_is_a_counter(tmp_path: Path) -> None:
    p = Pipeline.build([r.rule for r in load_rules()], Parser(reference=L.REFERENCE))
    p.run([*L.remote_bounce(86400, 1), *L.remote_bounce(0, 2)], "mail.log")  # a day back
    status = Watcher(p, [IdleSource()], state_dir=tmp_path, clock=lambda: 1.0).status()
    assert status["time_steps"] == {"back": 1, "largest_seconds": 86400.0}
    m = Metrics()
    m.update_from_status(status)
    assert samples(m)[("stormwatch_log_time_steps_back_total", ())] == 1


def test_the_fleet_is_exported_only_when_there_is_one() -> None:
    m = Metrics()
    m.update_from_status({"state": "armed"})
    assert not [k for k in samples(m) if "fleet" in k[0]]
    m.update_from_status(
        {
            "state": "armed",
            "fleet": {
                "host": "mx1", "redis": "down", "shared": 40, "not_shared": 2, "failures": 3,
                "queued": 5, "retained": 40, "rules": {"backscatter": 12},
            },
        }
    )  # fmt: skip
    got = samples(m)
    assert got[("stormwatch_fleet_redis_up", ())] == 0
    assert got[("stormwatch_fleet_shared_matches_total", ())] == 40
    assert got[("stormwatch_fleet_unshared_matches_total", ())] == 2
    assert got[("stormwatch_fleet_failures_total", ())] == 3
    assert got[("stormwatch_fleet_queued_matches", ())] == 5
    assert got[("stormwatch_rule_fleet_window_count", (("rule", "backscatter"),))] == 12
