"""The pure pipeline end to end on built logs: which rule trips, where, and what it asks for."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tests import logshapes as L
from watcher.core.parse import Parser
from watcher.core.pipeline import Pipeline
from watcher.core.rules import Rule
from watcher.runtime.rulefiles import LoadedRule, load_rules, parse_rule_text


def _rules(only: Sequence[str] | None = None) -> list[Rule]:
    rules = [r.rule for r in load_rules()]
    return [r for r in rules if only is None or r.name in only]


def _run(lines: list[str], rules: Sequence[Rule]) -> Pipeline:
    p = Pipeline.build(rules, Parser(reference=L.REFERENCE))
    p.run(lines, "mail.log")
    return p


def _storm(n: int, start: float = 100.0, rate: float = 5.0) -> list[str]:
    out: list[str] = []
    for i in range(n):
        out += L.storm_message(start + i / rate, i, f"list{i % 3}-bounces@lists{i % 3}.example.org")
    return out


def _ordinary(n: int, rate: float = 0.5) -> list[str]:
    out: list[str] = []
    for i in range(n):
        out += L.ordinary_message(i / rate, i)
    return out


def test_ordinary_traffic_trips_nothing() -> None:
    p = _run(_ordinary(200), _rules())
    assert p.switch_tripped is None
    assert p.actions == []
    assert p.parser.stats.unparsed == 0


def test_storm_trips_forwarding_loop_on_the_second_loop_line() -> None:
    lines = _ordinary(20) + _storm(50)
    p = _run(lines, _rules())
    trip = p.switch_tripped
    assert trip is not None
    second_loop = [i for i, ln in enumerate(lines, 1) if "forwarding loop" in ln][1]
    assert trip.lineno == second_loop
    assert trip.text == lines[second_loop - 1]
    s = p.summaries["forwarding-loop"]
    assert s.tripped is trip
    assert s.warned is not None
    assert s.warned.lineno < trip.lineno
    kinds = [(a.kind, a.severity, a.rule) for a, _ in p.actions]
    assert kinds[0] == ("notify", "warn", "forwarding-loop")
    assert ("contain-postfix", "trip", "forwarding-loop") in kinds
    contain = next(a for a, _ in p.actions if a.kind == "contain-postfix")
    assert contain.addresses == ("user@localhost",)  # the looping recipient: held at smtpd
    # the other rules trip later: evidence only, their actions were asked for already
    assert all(r == "forwarding-loop" for _, _, r in kinds)
    assert p.summaries["backscatter"].tripped is not None
    assert p.summaries["bounce-burst"].tripped is not None


def test_after_trip_counts_what_a_live_run_keeps_in() -> None:
    p = _run(_storm(50), _rules())
    back = p.summaries["backscatter"]
    assert back.matches == 50
    # tripped at the second loop: the first bounce (or two) was already out
    assert 48 <= back.after_switch <= 49
    assert sum(back.by_domain.values()) == 50
    assert set(back.by_domain) == {f"lists{i}.example.org" for i in range(3)}


def test_backscatter_alone_trips_on_the_tenth_relayed_bounce_and_freezes_its_transport() -> None:
    lines = _storm(30)
    rules = [r.model_copy(update={"containment": "freeze"}) for r in _rules(["backscatter"])]
    p = _run(lines, rules)
    trip = p.switch_tripped
    assert trip is not None
    sent = [i for i, ln in enumerate(lines, 1) if "status=sent" in ln]
    assert trip.lineno == sent[9]
    freeze = [a for a, _ in p.actions if a.kind == "freeze-postfix"]
    assert [a.transports for a in freeze] == [("smtp",)]
    assert p.summaries["backscatter"].count_at_trip == 10


def test_latch_trips_once() -> None:
    p = _run(_storm(100), _rules(["backscatter"]))
    trips = [a for a, _ in p.actions if a.severity == "trip"]
    assert len({a.kind for a in trips}) == len(trips)


def test_bounces_to_a_content_filter_or_local_are_not_backscatter() -> None:
    lines: list[str] = []
    for i in range(30):
        qid = f"4{i:09X}"
        lines += [
            L.qmgr_from(i, qid, ""),
            L.delivery(i, qid, "x@example.org", relay="127.0.0.1[127.0.0.1]:10024"),
            L.delivery(i, qid, "y@example.org", program="postfix/local", relay="local"),
            L.delivery(i, qid, "z@example.org", program="postfix/lmtp", relay="h[private/lmtp]"),
            L.removed(i, qid),
        ]
    p = _run(lines, _rules(["backscatter"]))
    assert p.summaries["backscatter"].matches == 0


def test_loopback_relay_that_is_not_a_content_filter_counts() -> None:
    lines: list[str] = []
    for i in range(12):
        qid = f"5{i:09X}"
        lines += [
            L.qmgr_from(i, qid, ""),
            L.delivery(i, qid, "x@example.org", relay="127.0.0.1[127.0.0.1]:2525"),
        ]
    p = _run(lines, _rules(["backscatter"]))
    assert p.switch_tripped is not None


def test_bounce_burst_trips_before_any_bounce_leaves() -> None:
    lines = [
        ln
        for ln in _storm(40)
        if "status=sent" not in ln  # nothing got out
    ]
    p = _run(lines, _rules(["bounce-burst"]))
    assert p.switch_tripped is not None
    assert p.summaries["bounce-burst"].count_at_trip == 15


def test_group_by_recipient_domain_trips_per_domain() -> None:
    text = """
[[rule]]
name = "per-domain"
trip_at = 5
actions = ["notify"]
[rule.match]
sender = "null"
agents = ["smtp"]
statuses = ["sent"]
remote = true
[rule.window]
seconds = 60
group_by = "recipient-domain"
"""
    rule: LoadedRule = parse_rule_text(text, "per-domain.toml")[0]
    spread = _run(_storm(12), [rule.rule])  # 3 domains, 4 each: below 5 everywhere
    assert spread.switch_tripped is None
    focused: list[str] = []
    for i in range(6):
        focused += L.storm_message(i, i, "only-bounces@lists.example.org")
    assert _run(focused, [rule.rule]).switch_tripped is not None


def test_rate_limit_reports_are_counted() -> None:
    lines = [
        *_ordinary(3),
        L.line(
            10, "rsyslogd", "imuxsock[pid: 4220, name: qmgr]: 42 messages lost due to rate-limiting"
        ),
        *_ordinary(3),
    ]
    p = _run(lines, _rules())
    assert p.loss.events == 1
    assert p.loss.lost == 42
    assert p.loss.first is not None
    assert p.loss.first.lineno == 16


def test_lines_lost_counts_what_a_daemon_could_report() -> None:
    """Fake reports with absurd counts (anyone can log one) are reports, not 10^26 lines."""
    report = "imuxsock[pid: 4220, name: qmgr]: {} messages lost due to rate-limiting"
    counts = ["1" + "0" * 26, "9" * 5000, "4294967296", "42", "4294967295"]
    lines = [L.line(10 + i, "rsyslogd", report.format(n)) for i, n in enumerate(counts)]
    p = _run([*_ordinary(3), *lines], _rules())
    assert p.loss.events == 5
    assert p.loss.lost == 42 + 4294967295


@pytest.mark.parametrize("block", [1, 7, 1000])
def test_block_boundaries_do_not_change_the_verdict(block: int) -> None:
    lines = _ordinary(10) + _storm(30) + _ordinary(10)
    whole = _run(lines, _rules())
    p = Pipeline.build(_rules(), Parser(reference=L.REFERENCE))
    n = 1
    for i in range(0, len(lines), block):
        n += p.run_text("\n".join(lines[i : i + block]) + "\n", "mail.log", n)
    assert n - 1 == len(lines)
    assert p.switch_tripped == whole.switch_tripped
    assert [a for a, _ in p.actions] == [a for a, _ in whole.actions]
    assert p.events == whole.events


CRAFTED = '"x>, relay=local, delay=0, delays=0/0/0/0, dsn=2.0.0, status=sent (a"@lists.example.org'


def test_a_crafted_quoted_sender_does_not_hide_its_bounces() -> None:
    """24 bounces relayed out, half to a sender whose quoted local part mimics a local
    delivery: backscatter counts all 24, each to the domain the bounce went to."""
    lines: list[str] = []
    for i in range(24):
        sender = CRAFTED if i % 2 else "list-bounces@lists.example.org"
        lines += L.remote_bounce(i * 10, i, sender)
    p = _run(lines, _rules(["backscatter"]))
    s = p.summaries["backscatter"]
    assert s.matches == 24
    assert s.by_domain == {"lists.example.org": 24}
    assert p.parser.stats.unparsed == 0
