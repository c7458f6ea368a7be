"""The latch and warnings, driven with hits at chosen times."""

from __future__ import annotations

from watcher.core.correlate import Fact
from watcher.core.decide import Decider
from watcher.core.detect import Hit
from watcher.core.events import BounceNotice
from watcher.core.rules import Rule
from watcher.runtime.rulefiles import parse_rule_text

RULE = parse_rule_text(
    """
[[rule]]
name = "r"
warn_at = 2
trip_at = 4
actions = ["notify", "freeze-postfix", "hold-bounces"]
[rule.match]
event = "bounce-notice"
[rule.window]
seconds = 10
""",
    "r.toml",
)[0].rule
OTHER = RULE.model_copy(
    update={"name": "other", "actions": ("notify", "freeze-postfix", "command")}
)
S = 1_000_000


def _hit(t: int, count: int, rule: Rule = RULE) -> Hit:
    ev = BounceNotice(
        t, "mx", "postfix/bounce", 1, "ABCDEF0001", "sender non-delivery", "ABCDEF0002"
    )
    return Hit(rule, Fact(ev, "x@example.org", "ABCDEF0001"), count, "")


def test_warns_once_per_window_then_trips_once() -> None:
    d = Decider([RULE])
    assert d.on_hit(_hit(0, 1)) == []
    warn = d.on_hit(_hit(1 * S, 2))
    assert [(a.kind, a.severity, a.threshold) for a in warn] == [("notify", "warn", 2)]
    assert d.on_hit(_hit(2 * S, 3)) == []  # already warned within the window
    trip = d.on_hit(_hit(3 * S, 4))
    assert [(a.kind, a.severity) for a in trip] == [
        ("notify", "trip"),
        ("freeze-postfix", "trip"),
        ("hold-bounces", "trip"),
    ]
    assert d.tripped
    assert d.tripped_rules() == {"r": 3 * S}
    assert d.on_hit(_hit(4 * S, 5)) == []  # latched


def test_warns_again_after_a_window_has_passed() -> None:
    d = Decider([RULE])
    assert d.on_hit(_hit(0, 2))
    assert d.on_hit(_hit(10 * S - 1, 2)) == []
    assert d.on_hit(_hit(10 * S, 2))


def test_second_rule_only_adds_actions_not_yet_taken() -> None:
    d = Decider([RULE, OTHER])
    d.on_hit(_hit(0, 4))
    second = d.on_hit(_hit(1, 4, OTHER))
    assert [a.kind for a in second] == ["command"]


def test_no_warnings_once_the_switch_has_tripped() -> None:
    d = Decider([RULE, OTHER])
    d.on_hit(_hit(0, 4))
    assert d.on_hit(_hit(1, 2, OTHER)) == []


def test_rearm_clears_the_latch() -> None:
    d = Decider([RULE])
    d.on_hit(_hit(0, 4))
    d.rearm()
    assert not d.tripped
    assert [a.kind for a in d.on_hit(_hit(1, 4))] == ["notify", "freeze-postfix", "hold-bounces"]
