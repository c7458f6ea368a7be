"""The sharer's thread logic with a fake store (batches, a full queue, outage and resume),
and the [fleet] settings' checks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from pydantic import ValidationError

from watcher.core.fleet import Batch, FleetCount, Shared
from watcher.core.fleetlatch import FleetLatch, HostState, rearm_targets
from watcher.core.settings import FleetSettings, Settings
from watcher.fleet.sharer import Hosts, Outage, Resumed, Sharer
from watcher.fleet.store import read_password
from watcher.runtime.rulefiles import parse_rule_text
from watcher.runtime.validate import problems, warnings

S = 1_000_000

# -- the sharer, with a fake store --------------------------------------------------------


class FakeStore:
    def __init__(self) -> None:
        self.down = False
        self.members: dict[tuple[str, str], set[str]] = {}
        self.calls: list[list[Batch]] = []
        self.states: dict[str, HostState] = {}
        self.asked = ""

    def add(self, batches: Sequence[Batch]) -> list[FleetCount]:
        self.calls.append(list(batches))
        if self.down:
            raise ConnectionError("Connection refused")
        out = []
        for b in batches:
            got = self.members.setdefault((b.rule, b.key), set())
            got |= {m for _, m in b.items}
            out.append(FleetCount(b.rule, b.key, 0, (("me", len(got)),)))
        return out

    def publish(self, state: HostState) -> None:
        if self.down:
            raise ConnectionError("Connection refused")
        self.states[state.host] = state

    def hosts(self) -> tuple[list[HostState], list[str]]:
        return sorted(self.states.values(), key=lambda s: s.host), []

    def requested(self) -> str:
        return self.asked

    def done_rearm(self, incident: str) -> None:
        if self.asked == incident:
            self.asked = ""

    def close(self) -> None:
        pass


def test_the_worker_publishes_this_hosts_latch_each_poll_and_reads_everyones() -> None:
    now = [0.0]
    store = FakeStore()
    store.states["mx2"] = HostState("mx2", True, "i-2", "bs", "sasl-user=bob")
    sharer = Sharer(store, poll_seconds=1, clock=lambda: now[0])
    sharer.step(0)  # no state from the pipeline yet: nothing published
    assert "mx1" not in store.states
    sharer.state = HostState("mx1", last_event="2026-12-02T10:00:00+00:00")
    sharer.step(0)
    (hosts,) = [r for r in sharer.take() if isinstance(r, Hosts)]
    assert [h.host for h in hosts.states] == ["mx1", "mx2"]
    sharer.step(0)  # within poll_seconds: not again
    assert not [r for r in sharer.take() if isinstance(r, Hosts)]
    now[0] = 1.5
    store.down = True
    sharer.step(0)
    assert [type(r) for r in sharer.take()] == [Outage]
    assert not sharer.up


def test_the_fleet_latch_reports_each_other_hosts_incident_once() -> None:
    latch = FleetLatch("mx1")
    mine = HostState("mx1", True, "i-1", "bs")
    other = HostState("mx2", True, "i-2", "bs")
    assert latch.news([mine, other, HostState("mx3")]) == [other]
    assert latch.news([mine, other]) == []
    again = HostState("mx2", True, "i-3", "sasl-flood", "sasl-user=bob")
    assert latch.news([again]) == [again]  # a new incident of the same host


def test_fleet_rearm_asks_the_hosts_tripped_by_an_incident_and_the_worker_answers() -> None:
    states = [
        HostState("mx1", True, "i-1", "bs"),
        HostState("mx2", True, "i-2", "bs", cause="i-1"),  # tripped for mx1's (ladder)
        HostState("mx3", True, "i-3", "bs"),
        HostState("mx4"),
    ]
    assert rearm_targets(states, "i-1") == {"mx1": "i-1", "mx2": "i-2"}
    assert rearm_targets(states) == {"mx1": "i-1", "mx2": "i-2", "mx3": "i-3"}
    store = FakeStore()
    store.asked = "i-1"
    sharer = Sharer(store, poll_seconds=0)
    sharer.state = HostState("mx1", True, "i-1", "bs")
    sharer.step(0)
    (hosts,) = [r for r in sharer.take() if isinstance(r, Hosts)]
    assert hosts.rearm == "i-1"
    sharer.rearmed = "i-1"  # the pipeline thread re-armed it
    sharer.step(0)
    assert store.asked == ""


def test_a_host_state_survives_json_and_a_bad_one_is_named() -> None:
    state = HostState("mx2", True, "i-2", "bs", "uid=33", "2026-12-02T10:00:00+00:00", "up", 5.0)
    assert HostState.from_json("mx2", state.to_json()) == state
    assert HostState.from_json("mx9", state.to_json()).host == "mx9"  # the field is the truth
    with pytest.raises(ValueError, match="tripped"):
        HostState.from_json("mx2", '{"tripped": "yes"}')
    with pytest.raises(ValueError, match="seen"):
        HostState.from_json("mx2", '{"seen": true}')
    with pytest.raises(ValueError, match="not an object"):
        HostState.from_json("mx2", "[1]")


def _ev(i: int) -> Shared:
    return Shared("bs", "", 60 * S, i * S, f"m{i}")


def test_the_sharer_batches_reports_counts_and_never_blocks_when_full() -> None:
    store = FakeStore()
    sharer = Sharer(store, queue_size=100, batch_max=50)
    for i in range(120):
        sharer.offer(_ev(i))
    assert sharer.not_shared == 20  # the queue was full: those stay local only
    sharer.step(0)
    sharer.step(0)
    assert [len(c[0].items) for c in store.calls] == [50, 50]
    # read from the pipeline's thread: a counter the worker sets, never its dict of deques
    assert sharer.status()["retained"] == 100
    counts = [r for r in sharer.take() if isinstance(r, FleetCount)]
    assert counts[-1].total == 100
    sharer.step(0)  # nothing new: only the counts are read
    assert store.calls[-1] == [Batch("bs", "", 60 * S, ())]


def test_an_outage_is_reported_once_and_the_retained_window_is_sent_again() -> None:
    now = [0.0]
    store = FakeStore()
    sharer = Sharer(store, retry_seconds=5, clock=lambda: now[0])
    for i in range(3):
        sharer.offer(_ev(i))
    sharer.step(0)
    store.down = True
    store.members.clear()  # a restarted Redis has lost everything
    for i in range(3, 6):
        sharer.offer(_ev(i))
    sharer.step(0)
    sharer.offer(_ev(6))
    sharer.step(0)  # before retry_seconds: not tried, kept
    assert len(store.calls) == 2
    reports = sharer.take()
    assert [r for r in reports if isinstance(r, Outage)] == [
        Outage("ConnectionError: Connection refused")
    ]
    assert not sharer.up
    now[0] = 6.0
    sharer.step(0)  # failing again: no second outage report
    assert not [r for r in sharer.take() if isinstance(r, Outage)]
    store.down = False
    now[0] = 12.0
    sharer.step(0)
    reports = sharer.take()
    assert sharer.up
    assert reports[0] == Resumed(7, 12.0)
    assert store.members[("bs", "")] == {f"m{i}" for i in range(7)}  # nothing lost
    assert [r.total for r in reports if isinstance(r, FleetCount)] == [7]


# -- settings ------------------------------------------------------------------------------


def test_a_password_file_others_can_read_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "redis.password"
    secret.write_text("s3cret\n")
    secret.chmod(0o644)
    settings = Settings(
        fleet=FleetSettings(url="redis://127.0.0.1:6379/0", password_file=str(secret))
    )
    found = problems(settings)
    assert len(found) == 1
    assert "mode 644" in found[0]
    secret.chmod(0o600)
    assert problems(settings) == []
    assert read_password(str(secret)) == "s3cret"


@pytest.mark.parametrize("url", ["http://127.0.0.1/", "redis:/x", "127.0.0.1:6379"])
def test_only_redis_urls_are_accepted(url: str) -> None:
    with pytest.raises(ValidationError, match="url"):
        FleetSettings(url=url)
    assert FleetSettings(url="rediss://r.example.net:6380/0").url.startswith("rediss://")


def test_check_config_warns_of_a_shared_rule_without_a_fleet() -> None:
    assert any(
        "[fleet] url is empty" in w
        for w in warnings(Settings(), [r.rule for r in parse_rule_text(SHARED, "t.toml")])
    )


SHARED = """[[rule]]
name = "bs"
trip_at = 6
shared = true
[rule.match]
event = "delivery"
[rule.window]
seconds = 60
"""
