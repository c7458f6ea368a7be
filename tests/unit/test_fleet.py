"""The fleet's pure parts: identity, batches, shares, what is kept to send again, and the
pipeline deciding on the fleet's count."""

from __future__ import annotations

import pytest

from tests import logshapes as L
from watcher.core.fleet import (
    Batch,
    FleetCount,
    Retained,
    Shared,
    batches,
    combine,
    event_id,
    shares_text,
    store_key,
    with_idle,
)
from watcher.core.parse import Parser
from watcher.core.pipeline import Pipeline
from watcher.core.rules import Rule
from watcher.runtime.rulefiles import parse_rule_text

S = 1_000_000

RULE = """[[rule]]
name = "bs"
warn_at = 3
trip_at = 6
shared = true
[rule.match]
event = "delivery"
sender = "null"
statuses = ["sent"]
[rule.window]
seconds = 60
"""


def _rules() -> list[Rule]:
    return [r.rule for r in parse_rule_text(RULE, "t.toml")]


def _bounces(n: int, start: float = 100.0) -> list[str]:
    out: list[str] = []
    for i in range(n):
        out += L.remote_bounce(start + i, i)
    return out


# -- pure ------------------------------------------------------------------------------


def test_a_line_read_twice_is_the_same_member_and_other_lines_differ() -> None:
    a, b = L.remote_bounce(100, 1)[5], L.remote_bounce(100, 2)[5]
    assert event_id("file:/var/log/mail.log", a) == event_id("file:/var/log/mail.log", a)
    assert event_id("file:/var/log/mail.log", a) != event_id("file:/var/log/mail.log", b)
    assert event_id("file:/var/log/mail.log", a) != event_id("journal", a)


def test_the_store_key_hashes_text_from_the_log() -> None:
    key = store_key("prod", "bs", "evil:*\r\nFLUSHALL")
    assert key.startswith("stormwatch:prod:bs:")
    assert all(c not in key for c in ("\n", "*", "FLUSHALL"))
    assert store_key("prod", "bs", "") == "stormwatch:prod:bs:-"


def test_batches_group_by_rule_and_key_in_order() -> None:
    evs = [
        Shared("r", "a", 60 * S, 1, "m1"),
        Shared("q", "", 10 * S, 2, "m2"),
        Shared("r", "a", 60 * S, 3, "m3"),
    ]
    assert batches(evs) == [
        Batch("r", "a", 60 * S, ((1, "m1"), (3, "m3"))),
        Batch("q", "", 10 * S, ((2, "m2"),)),
    ]
    idle = [Batch("r", "a", 60 * S, ()), Batch("z", "", 5, ())]
    assert [(b.rule, b.items) for b in with_idle(batches(evs)[:1], idle)] == [
        ("r", ((1, "m1"), (3, "m3"))),
        ("z", ()),
    ]


def test_shares_leave_out_empty_hosts_and_say_the_total() -> None:
    shares = combine([("mx2", 5), ("mx1", 7), ("mx3", 0)])
    assert shares == (("mx1", 7), ("mx2", 5))
    assert FleetCount("r", "", 0, shares).total == 12
    assert shares_text(shares) == "12 on 2 hosts: mx1 7, mx2 5"


def test_retained_keeps_two_windows_of_log_time_and_is_bounded() -> None:
    kept = Retained()
    for i in range(10):
        kept.add(Shared("r", "", 10 * S, i * 3 * S, f"m{i}"))
    # the latest is at 27 s: two 10 s windows back is 7 s, exclusive
    assert [e.member for e in kept.everything()] == [f"m{i}" for i in range(3, 10)]
    kept = Retained(cap=5)
    for i in range(100):
        kept.add(Shared("r", "", 10**9 * S, 30 * S + i, f"n{i}"))
    assert len(kept) == 5
    assert [b.items for b in kept.groups()] == [()]


# -- deciding on the fleet's count -------------------------------------------------------


def test_the_fleet_count_trips_a_host_that_alone_is_below_trip_at() -> None:
    p = Pipeline.build(_rules(), Parser(reference=L.REFERENCE))
    offered = []
    p.on_shared = lambda hit, where: offered.append((hit, where))
    p.run(_bounces(4), "mail.log")
    assert len(offered) == 4
    assert not p.decider.is_tripped("bs")
    acts = p.fleet_count(FleetCount("bs", "", 0, (("mx2", 5), ("mx1", 4))))
    assert [a.kind for a in acts] == ["notify"]
    assert acts[0].severity == "trip"
    assert acts[0].count == 9
    assert p.decider.is_tripped("bs")
    assert p.fleet_shares["bs"] == (("mx2", 5), ("mx1", 4))
    s = p.summaries["bs"]
    assert s.tripped is offered[-1][1]  # at this host's last counted line
    assert s.count_at_trip == 9
    # once tripped, another count adds nothing
    assert p.fleet_count(FleetCount("bs", "", 0, (("mx2", 50),))) == []


def test_a_fleet_count_below_trip_at_only_warns_and_a_local_trip_names_no_fleet() -> None:
    p = Pipeline.build(_rules(), Parser(reference=L.REFERENCE))
    p.on_shared = lambda hit, where: None
    p.run(_bounces(1), "mail.log")
    acts = p.fleet_count(FleetCount("bs", "", 0, (("mx2", 2), ("mx1", 1))))
    assert [(a.kind, a.severity) for a in acts] == [("notify", "warn")]
    assert p.fleet_count(FleetCount("other", "", 0, (("mx2", 99),))) == []
    p.run(_bounces(6, start=130), "mail.log")  # this host alone trips
    assert p.decider.is_tripped("bs")
    assert "bs" not in p.fleet_shares


def test_a_rule_not_shared_is_not_offered() -> None:
    rules = [r.model_copy(update={"shared": False}) for r in _rules()]
    p = Pipeline.build(rules, Parser(reference=L.REFERENCE))
    offered: list[object] = []
    p.on_shared = lambda hit, where: offered.append(hit)
    p.run(_bounces(3), "mail.log")
    assert offered == []


@pytest.mark.parametrize("window", [1, 60])
def test_retained_trims_by_each_rules_window(window: int) -> None:
    kept = Retained()
    for i in range(200):
        kept.add(Shared("bs", "", window * S, i * S, f"m{i}"))
    assert len(kept) == min(200, 2 * window)
