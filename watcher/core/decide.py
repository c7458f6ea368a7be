"""Latch, warnings and the actions a trip asks for. Pure: decisions are data.

* A rule *warns* when its window count reaches ``warn_at``; it warns again
  only after a whole window length of log time has passed.
* A rule *trips* when its count reaches ``trip_at``. The switch latches: a
  rule trips once, and stays tripped until a human re-arms it.
* One incident, one set of actions: once the switch has tripped, warnings
  stop, and a second rule that trips only adds the actions not already asked
  for (no second page: it adds evidence, which the pipeline records).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, get_args

from watcher.core.detect import Hit
from watcher.core.events import MICROS, Delivery, ForwardingLoop
from watcher.core.rules import ActionKind, Rule

MAX_LOOP_ADDRESSES = 20  # recipients held at smtpd for one incident

Severity = Literal["warn", "trip", "escalate"]  # escalate: the ladder's step 2
ACTION_KINDS: frozenset[ActionKind] = frozenset(get_args(ActionKind))


@dataclass(frozen=True, slots=True)
class Action:
    """One thing a responder should do.

    ``transports`` (for ``freeze-postfix``) are the transports that carried
    the rule's matching deliveries; empty when the rule counts events that
    have no transport yet (bounce notices, loops): the responder then uses
    its configured default.
    """

    kind: ActionKind
    severity: Severity
    rule: str
    time: int
    count: int
    threshold: int
    window_seconds: float
    transports: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()  # contain-postfix: the looping recipients, to hold at smtpd
    # contain-offender: the origin to stop ("sasl-user=bob", "uid=33", "client=192.0.2.7"),
    # the queue IDs the join saw from it (to hold), its top destination domains ("d (n)")
    offender: str = ""
    queue_ids: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()


@dataclass(slots=True)
class _RuleState:
    tripped_at: int | None = None
    warned_at: int | None = None
    transports: set[str] = field(default_factory=set)
    loops: set[str] = field(default_factory=set)
    offender: str = ""  # the group key contain-offender was asked for


class Decider:
    def __init__(self, rules: Iterable[Rule]) -> None:
        self._state = {r.name: _RuleState() for r in rules}
        self._done: set[ActionKind] = set()

    @property
    def tripped(self) -> bool:
        """The switch is tripped: a rule tripped, or the latch was restored."""
        return bool(self._done) or any(s.tripped_at is not None for s in self._state.values())

    def tripped_rules(self) -> dict[str, int]:
        """Rule name -> log time it tripped."""
        return {n: s.tripped_at for n, s in self._state.items() if s.tripped_at is not None}

    def is_tripped(self, rule: str) -> bool:
        return self._state[rule].tripped_at is not None

    def rearm(self) -> None:
        """Clear the latch: a human has dealt with the incident."""
        for s in self._state.values():
            s.tripped_at = None
            s.warned_at = None
            s.transports.clear()
            s.loops.clear()
            s.offender = ""
        self._done.clear()

    def mark_done(self, kind: ActionKind) -> None:
        """An action decided outside the rules (the ladder's escalation): not asked again."""
        self._done.add(kind)

    def replace_rules(self, rules: Iterable[Rule]) -> None:
        """After a reload: rules kept by name keep their latch and warning state."""
        self._state = {r.name: self._state.get(r.name) or _RuleState() for r in rules}

    def restore(self, tripped: Mapping[str, int], done: Iterable[str]) -> None:
        """Take over a latch from the state file (a restart, or a manual trip elsewhere):
        these rules count as tripped and these action kinds as done."""
        for name, at in tripped.items():
            if name in self._state:
                self._state[name].tripped_at = at
        self._done |= {k for k in done if k in ACTION_KINDS}

    def on_hit(self, hit: Hit) -> list[Action]:
        rule = hit.rule
        state = self._state[rule.name]
        ev = hit.fact.event
        if isinstance(ev, Delivery) and ev.relay_ip and state.tripped_at is None:
            state.transports.add(ev.transport)  # an outbound transport: freeze this one
        if isinstance(ev, ForwardingLoop) and len(state.loops) < MAX_LOOP_ADDRESSES:
            state.loops.add(ev.loop_address.lower())  # its new mail is held at smtpd
        if state.tripped_at is not None:
            return self._second_offender(rule, hit, state)
        now = ev.time
        switch_tripped = bool(self._done)
        if rule.trip_at is not None and hit.count >= rule.trip_at:
            state.tripped_at = now
            return self._trip(rule, hit, state)
        if (
            not switch_tripped
            and rule.warn_at is not None
            and hit.count >= rule.warn_at
            and (
                state.warned_at is None
                or now - state.warned_at >= int(rule.window.seconds * MICROS)
            )
        ):
            state.warned_at = now
            return [self._action("notify", "warn", rule, hit, rule.warn_at)]
        return []

    def _trip(self, rule: Rule, hit: Hit, state: _RuleState) -> list[Action]:
        assert rule.trip_at is not None
        out: list[Action] = []
        for asked in rule.actions:
            # contain-postfix is the ladder's first step: scoped, or the freeze at once
            kind: ActionKind = (
                "freeze-postfix"
                if asked == "contain-postfix" and rule.containment == "freeze"
                else asked
            )
            if kind == "contain-offender" and kind in self._done:
                kind = "freeze-postfix"  # another rule's offender holds the one block: step 2
                severity: Severity = "escalate"
            else:
                severity = "trip"
            if kind in self._done or (kind == "contain-postfix" and "freeze-postfix" in self._done):
                continue
            self._done.add(kind)
            transports = tuple(sorted(state.transports)) if kind == "freeze-postfix" else ()
            addresses = (
                tuple(sorted(state.loops)) if kind in ("contain-postfix", "hold-bounces") else ()
            )
            action = self._action(kind, severity, rule, hit, rule.trip_at, transports, addresses)
            if kind == "contain-offender":
                state.offender = hit.key
                action = replace(action, offender=offender_of(rule, hit.key))
            out.append(action)
        return out

    def trip_for_fleet(self, rule: Rule, at: int, offender: str = "") -> list[Action]:
        """Another host of the fleet tripped ``rule`` (``[fleet] on_trip = "ladder"``):
        trip it here too, with its actions (contain-offender for the same offender)."""
        state = self._state.get(rule.name)
        if state is None or state.tripped_at is not None or rule.trip_at is None:
            return []
        state.tripped_at = at
        out: list[Action] = []
        for kind in rule.actions:
            if kind == "contain-postfix" and rule.containment == "freeze":
                kind = "freeze-postfix"
            if kind in self._done or (
                kind == "contain-offender" and split_offender(offender)[0] != rule.window.group_by
            ):
                continue  # no offender of this rule's kind: the ladder's other steps only
            self._done.add(kind)
            out.append(Action(kind, "trip", rule.name, at, 0, rule.trip_at,
                              rule.window.seconds, offender=offender if kind == "contain-offender"
                              else ""))  # fmt: skip
            if kind == "contain-offender":
                state.offender = split_offender(offender)[1]
        return out

    def _second_offender(self, rule: Rule, hit: Hit, state: _RuleState) -> list[Action]:
        """Another group of a rule whose offender is contained reaches ``trip_at``: one
        block per incident, so the ladder's step 2, the freeze, at once."""
        if (
            "contain-offender" not in rule.actions
            or "contain-offender" not in self._done
            or rule.trip_at is None
            or hit.count < rule.trip_at
            or hit.key == state.offender
            or "freeze-postfix" in self._done
        ):
            return []
        self._done.add("freeze-postfix")
        return [self._action("freeze-postfix", "escalate", rule, hit, rule.trip_at)]

    @staticmethod
    def _action(
        kind: ActionKind,
        severity: Severity,
        rule: Rule,
        hit: Hit,
        threshold: int,
        transports: tuple[str, ...] = (),
        addresses: tuple[str, ...] = (),
    ) -> Action:
        return Action(
            kind,
            severity,
            rule.name,
            hit.fact.event.time,
            hit.count,
            threshold,
            rule.window.seconds,
            transports,
            addresses,
        )


def offender_of(rule: Rule, key: str) -> str:
    """``group=key`` for the group a trip counted: ``sasl-user=bob``, ``uid=33``..."""
    return f"{rule.window.group_by}={key}"


def split_offender(offender: str) -> tuple[str, str]:
    """``("sasl-user", "bob")`` from ``sasl-user=bob`` (``("", "")`` if not one)."""
    group, sep, key = offender.partition("=")
    return (group, key) if sep and key else ("", "")
