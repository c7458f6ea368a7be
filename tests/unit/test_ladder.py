"""The escalation ladder: contain first; freeze only when the storm's mail keeps leaving."""

from __future__ import annotations

from pathlib import Path

from tests import logshapes as L
from tests.unit.test_failsafe import Fake
from watcher.core import plan
from watcher.core.correlate import Correlator, Fact
from watcher.core.decide import Action
from watcher.core.events import MICROS
from watcher.core.ladder import Ladder
from watcher.core.parse import Parser
from watcher.core.pipeline import Pipeline
from watcher.core.settings import DEFAULT_CONTENT_FILTERS, Settings
from watcher.responders.killswitch import KillSwitch
from watcher.responders.latchstore import LatchStore
from watcher.responders.postfix import Frozen, combined
from watcher.runtime.rulefiles import load_rules

RULES = {r.rule.name: r.rule for r in load_rules()}


def _facts(lines: list[str]) -> list[Fact]:
    parser, corr = Parser(reference=L.REFERENCE), Correlator()
    out: list[Fact] = []
    for line in lines:
        ev = parser.parse(line)
        if ev is not None:
            fact = corr.feed(ev)
            if fact is not None:
                out.append(fact)
    return out


def _steps(ladder: Ladder, lines: list[str]) -> list[Action]:
    return [s for f in _facts(lines) if (s := ladder.on_fact(f)) is not None]


def _bounce_out(t: float, n: int, relay: str = "mx.lists.example.org[192.0.2.9]:25") -> list[str]:
    qid = f"B{n:09X}"
    return [L.qmgr_from(t, qid, ""), L.delivery(t, qid, "owner@lists.example.org", relay=relay)]


def test_escapes_within_the_grace_period_do_not_escalate_two_after_it_do() -> None:
    ladder = Ladder(DEFAULT_CONTENT_FILTERS)
    ladder.contained(RULES["forwarding-loop"], L.micros(0))
    lines = _bounce_out(5, 1) + _bounce_out(11, 2)  # 5 s: still in flight; 11 s: after 10 s
    lines += [L.qmgr_from(12, "C000000001", "alice@example.com")]
    lines += [L.delivery(12, "C000000001", "bob@example.net")]  # a user's mail: not the storm
    lines += _bounce_out(13, 3, relay="127.0.0.1[127.0.0.1]:10024")  # a content filter: stays
    steps = _steps(ladder, lines)
    assert steps == []
    assert ladder.escaped == 1
    steps = _steps(ladder, _bounce_out(14, 4))
    assert len(steps) == 1
    step = steps[0]
    assert (step.kind, step.severity, step.rule) == (
        "freeze-postfix",
        "escalate",
        "forwarding-loop",
    )
    assert step.transports == ("smtp",)
    assert (step.count, step.threshold, step.window_seconds) == (2, 2, 10.0)
    assert not ladder.watching
    assert _steps(ladder, _bounce_out(20, 5)) == []  # once


def test_a_ladder_not_told_that_step_1_took_effect_never_escalates() -> None:
    """In a replay what follows the trip line happened without stormwatch: no evidence."""
    ladder = Ladder(DEFAULT_CONTENT_FILTERS)
    lines = [ln for n in range(10) for ln in _bounce_out(60 + n, n)]
    assert _steps(ladder, lines) == []


def test_a_contained_storm_whose_bounces_keep_leaving_escalates_and_is_paged(
    tmp_path: Path,
) -> None:
    calls: list[str] = []
    pages: list[tuple[str, str, str]] = []
    kinds = ("notify", "stop-fetchmail", "contain-postfix", "freeze-postfix", "hold-bounces")
    store = LatchStore(tmp_path)
    switch = KillSwitch(
        Settings(state_dir=str(tmp_path)),
        store,
        {k: Fake(k, calls) for k in kinds},
        page=lambda title, body, level: pages.append((title, body, level)),
        wall=lambda: 1_700_000_000.0,
    )
    p = Pipeline.build(list(RULES.values()), Parser(reference=L.REFERENCE))
    p.on_actions = switch.on_actions
    switch.pipeline = p
    storm: list[str] = []
    for i in range(3):
        storm += L.storm_message(i / 5, i, "list-bounces@lists.example.org")
    p.run(storm, "mail.log")
    assert calls[:2] == ["contain-postfix", "hold-bounces"]
    assert "freeze-postfix" not in calls
    assert p.ladder.watching
    # bounces that ride a transport_maps route keep leaving after step 1
    late = [ln for n in range(3) for ln in _bounce_out(30 + n, 100 + n)]
    p.run(late, "mail.log", 1000)
    assert calls.count("freeze-postfix") == 1
    escalations = [t for t, _, _ in pages if "ESCALATED" in t]
    assert len(escalations) == 1
    latch = store.read()
    step2 = next(a for a in latch.planned if a.kind == "freeze-postfix")
    assert step2.severity == "escalate"
    assert step2.transports == ("smtp",)


def test_a_rule_that_starts_at_the_freeze_freezes_at_once() -> None:
    rule = RULES["forwarding-loop"].model_copy(update={"containment": "freeze"})
    p = Pipeline.build([rule], Parser(reference=L.REFERENCE))
    lines: list[str] = []
    for i in range(3):
        lines += L.storm_message(i / 5, i, "list-bounces@lists.example.org")
    p.run(lines, "mail.log")
    kinds = [a.kind for a, _ in p.actions if a.severity == "trip"]
    assert "freeze-postfix" in kinds
    assert "contain-postfix" not in kinds


def test_contain_values_put_the_tables_first_and_leave_out_unsafe_addresses() -> None:
    a = Action("contain-postfix", "trip", "forwarding-loop", 0, 2, 2, 600.0, (),
               ("looper@example.com", "x y@bad", "a,b@c.d", "{x}@e.f", "-opt@g.h"))  # fmt: skip
    saved: dict[str, str | None] = {
        "soft_bounce": None,
        plan.SDTM: "hash:$config_directory/sdtm",
        plan.RECIPIENT_RESTRICTIONS: "permit_mynetworks, reject_unauth_destination",
    }
    values = plan.contain_values(a, saved)
    assert values["soft_bounce"] == "yes"
    assert values[plan.SDTM] == (
        "inline:{ {<>=retry:4.7.1 held by stormwatch} }, hash:$config_directory/sdtm"
    )
    assert values[plan.RECIPIENT_RESTRICTIONS] == (
        "check_recipient_access inline:{ {looper@example.com=HOLD held by stormwatch} }, "
        "permit_mynetworks, reject_unauth_destination"
    )
    bare = plan.contain_values(Action("contain-postfix", "trip", "r", 0, 0, 0, 0.0), {})
    assert bare == {"soft_bounce": "yes", plan.SDTM: plan.NULL_SENDER_HOLD}


def test_several_steps_restore_to_before_the_first() -> None:
    contain = Frozen({"soft_bounce": None, plan.SDTM: None}, {"soft_bounce": "yes"}, "orig\n", "h1")
    freeze = Frozen({"soft_bounce": "yes", "defer_transports": None}, {}, "contained\n", "h2")
    both = combined([contain, freeze])
    assert both.saved == {"soft_bounce": None, plan.SDTM: None, "defer_transports": None}
    assert (both.main_cf_before, both.main_cf_after_sha256) == ("orig\n", "h2")


def test_the_grace_is_the_rules_own() -> None:
    rule = RULES["backscatter"].model_copy(update={"escalate_after_seconds": 30.0})
    ladder = Ladder(DEFAULT_CONTENT_FILTERS)
    ladder.contained(rule, 0)
    assert ladder.grace == 30 * MICROS
