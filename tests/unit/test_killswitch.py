"""The kill switch with fake responders: order, latch first, failures isolated, restart, rearm."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests import logshapes as L
from tests.incidents import make_incident
from watcher.core.decide import Action
from watcher.core.incident import Incident
from watcher.core.parse import Parser
from watcher.core.pipeline import Pipeline, Where
from watcher.core.settings import Settings
from watcher.responders.base import Outcome
from watcher.responders.killswitch import KillSwitch
from watcher.responders.latchstore import LatchStore
from watcher.responders.postfix import PostfixControl
from watcher.responders.rearm import RearmError, rearm
from watcher.runtime.rulefiles import load_rules


class Fake:
    def __init__(self, kind: str, log: list[str], store: LatchStore, *, fail: bool = False) -> None:
        self.kind = kind
        self.log = log
        self.store = store
        self.fail = fail

    def respond(self, action: Action, incident: Incident) -> Outcome:
        latch = self.store.read()
        assert latch.tripped, "the latch must be written before any action"
        self.log.append(self.kind)
        if self.fail:
            raise RuntimeError(f"{self.kind} broke")
        details: dict[str, object] = {"held": ["ABCDEF0001"]} if self.kind == "hold-bounces" else {}
        return Outcome(self.kind, True, f"{self.kind} done", details)


KINDS = ("notify", "stop-fetchmail", "freeze-postfix", "hold-bounces", "command")


def _switch(tmp_path: Path, ran: list[str], fail: str = "") -> KillSwitch:
    store = LatchStore(tmp_path)
    responders = {k: Fake(k, ran, store, fail=k == fail) for k in KINDS}
    return KillSwitch(Settings(state_dir=tmp_path), store, responders, wall=lambda: 1_700_000_000.0)


def _actions(rule: str = "backscatter", kinds: tuple[str, ...] = KINDS) -> list[Action]:
    return [Action(k, "trip", rule, 0, 10, 10, 60.0) for k in kinds]  # type: ignore[arg-type]


INCIDENT = make_incident(
    "20231114T221320Z-backscatter", "backscatter", "", 10, 10, 60, "", "", "line"
)
WHERE = Where("mail.log", 7, "line", 0)


def test_outflow_first_then_inflow_then_the_page(tmp_path: Path) -> None:
    ran: list[str] = []
    _switch(tmp_path, ran).trip(_actions(), INCIDENT, WHERE)
    assert ran == ["freeze-postfix", "hold-bounces", "stop-fetchmail", "command", "notify"]
    latch = json.loads((tmp_path / "latch.json").read_text())
    assert latch["tripped"] is True
    assert [a["kind"] for a in latch["actions"]] == ran
    assert latch["held"] == ["ABCDEF0001"]
    assert latch["trips"][0]["line"] == 7


def test_a_failing_responder_is_an_outcome_and_the_others_still_run(tmp_path: Path) -> None:
    ran: list[str] = []
    _switch(tmp_path, ran, fail="freeze-postfix").trip(_actions(), INCIDENT, WHERE)
    assert ran == ["freeze-postfix", "hold-bounces", "stop-fetchmail", "command", "notify"]
    latch = json.loads((tmp_path / "latch.json").read_text())
    freeze = latch["actions"][0]
    assert freeze["ok"] is False
    assert "RuntimeError: freeze-postfix broke" in freeze["summary"]


def test_a_second_trip_adds_evidence_and_repeats_nothing(tmp_path: Path) -> None:
    ran: list[str] = []
    switch = _switch(tmp_path, ran)
    switch.trip(_actions(kinds=("notify", "freeze-postfix")), INCIDENT, WHERE)
    switch.trip(_actions("bounce-burst", ("notify", "freeze-postfix", "command")), INCIDENT, WHERE)
    assert ran == ["freeze-postfix", "notify", "command"]
    latch = json.loads((tmp_path / "latch.json").read_text())
    assert [t["rule"] for t in latch["trips"]] == ["backscatter", "backscatter"]
    assert latch["incident"]["id"] == INCIDENT.id


def test_a_restarted_watcher_stays_tripped_and_acts_no_more(tmp_path: Path) -> None:
    ran: list[str] = []
    _switch(tmp_path, ran).trip(_actions(), INCIDENT, WHERE)
    ran.clear()
    rules = [r.rule for r in load_rules()]
    pipeline = Pipeline.build(rules, Parser(reference=L.REFERENCE))
    after_restart = _switch(tmp_path, ran)
    after_restart.pipeline = pipeline
    pipeline.on_actions = after_restart.on_actions
    after_restart.tick()
    assert pipeline.decider.tripped
    lines: list[str] = []
    for i in range(20):
        lines += L.storm_message(i / 5, i, "list-bounces@lists.example.org")
    pipeline.run(lines, "mail.log")
    assert ran == []  # every kind was done before the restart
    assert pipeline.summaries["forwarding-loop"].tripped is not None  # but it is evidence


def test_rearm_refuses_an_unreadable_state(tmp_path: Path) -> None:
    (tmp_path / "latch.json").write_text("{not json")
    with pytest.raises(RearmError, match=r"latch\.json.*\n\{not json"):
        rearm(LatchStore(tmp_path), PostfixControl(str(tmp_path)), release=False)
    assert (tmp_path / "latch.json").read_text() == "{not json"  # left as it was


def test_rearm_when_not_tripped_does_nothing_and_is_safe_twice(tmp_path: Path) -> None:
    for _ in range(2):
        done = rearm(LatchStore(tmp_path), PostfixControl(str(tmp_path)), release=True)
        assert (done.was_tripped, done.incident, done.released, done.still_held) == (
            False,
            None,
            0,
            0,
        )
        assert done.steps == ["the switch is not tripped: nothing to undo"]


def test_rearm_archives_the_record_and_clears_the_latch(tmp_path: Path) -> None:
    ran: list[str] = []
    _switch(tmp_path, ran).trip(_actions(kinds=("notify",)), INCIDENT, WHERE)

    class NoQueue(PostfixControl):
        def queue(self) -> list[dict[str, Any]]:
            return []

    done = rearm(LatchStore(tmp_path), NoQueue(str(tmp_path)), release=True)
    assert done.was_tripped
    assert done.incident is not None
    assert not LatchStore(tmp_path).read().tripped
    archived = tmp_path / "incidents" / INCIDENT.id / "latch.json"
    assert json.loads(archived.read_text())["tripped"] is True
    assert done.steps[-1].startswith("re-armed")
