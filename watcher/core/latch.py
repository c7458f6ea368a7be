"""The latch: whether the switch is tripped, and the record of the trip. Pure data and its codec.

``<state_dir>/latch.json`` holds :meth:`Latch.to_json`; it is read back with
:meth:`Latch.from_json`, which names the field that is wrong. Reading and
writing the file (under a lock) is the kill switch's job
(:mod:`watcher.responders.latchstore`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from watcher.core.decide import Action
from watcher.core.incident import Incident, LineRef
from watcher.core.rules import ACTION_ORDER

SCHEMA = 1


class LatchFormatError(ValueError):
    """latch.json holds something that is not a latch; the message names the field."""


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """How one action went: a responder's outcome, and when (host clock, ISO 8601 UTC)."""

    kind: str
    ok: bool
    summary: str
    at: str
    details: Mapping[str, Any] = field(default_factory=dict)  # JSON-serialisable
    attempt: int = 1  # 2 and more: a retry of an action that failed

    def to_json(self) -> dict[str, Any]:
        out = {
            "kind": self.kind,
            "ok": self.ok,
            "summary": self.summary,
            "details": dict(self.details),
            "at": self.at,
        }
        if self.attempt > 1:
            out["attempt"] = self.attempt
        return out


@dataclass(frozen=True, slots=True)
class TripRecord:
    """One rule tripping (a second rule tripping while tripped adds another)."""

    rule: str
    at: str  # host clock
    count: int
    threshold: int
    log_time: str
    source: str
    line: int
    text: str

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "at": self.at,
            "count": self.count,
            "threshold": self.threshold,
            "log_time": self.log_time,
            "source": self.source,
            "line": self.line,
            "text": self.text,
        }


@dataclass(slots=True)
class Latch:
    """``tripped`` and, while tripped, the incident and what was done about it.

    After a re-arm ``last_incident``, ``rearmed_at`` and ``still_held`` say what
    the last trip left behind.
    """

    tripped: bool = False
    unknown: str = ""  # not saved: why the file could not be read ("" when it could)
    since: str = ""
    since_epoch: float = 0.0
    incident: Incident | None = None
    trips: list[TripRecord] = field(default_factory=list)
    planned: list[Action] = field(default_factory=list)  # the incident's actions, in order
    started: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # kind -> prepared
    actions: list[ActionRecord] = field(default_factory=list)  # every outcome, retries too
    held: list[str] = field(default_factory=list)
    last_reminder_epoch: float = 0.0
    last_incident: str = ""
    rearmed_at: str = ""
    still_held: list[str] = field(default_factory=list)

    def start(self, incident: Incident, since: str, since_epoch: float) -> None:
        """Trip: a fresh record of ``incident``, from ``since`` (host clock)."""
        self.tripped, self.since, self.since_epoch = True, since, since_epoch
        self.incident, self.unknown = incident, ""
        self.trips, self.actions, self.held = [], [], []
        self.planned, self.started = [], {}
        self.last_reminder_epoch = since_epoch
        self.last_incident, self.rearmed_at, self.still_held = "", "", []

    def clear(self, rearmed_at: str, still_held: Sequence[str]) -> None:
        """Re-armed: what the last incident left on hold, and nothing else."""
        last = self.incident.id if self.incident is not None else ""
        self.tripped, self.since, self.since_epoch, self.incident = False, "", 0.0, None
        self.trips, self.actions, self.held = [], [], []
        self.planned, self.started, self.unknown = [], {}, ""
        self.last_reminder_epoch = 0.0
        self.last_incident, self.rearmed_at = last, rearmed_at
        self.still_held = sorted(still_held)

    def done(self) -> set[str]:
        """The action kinds that have run (to an outcome) for this incident."""
        return {a.kind for a in self.actions}

    def latest(self, kind: str) -> ActionRecord | None:
        """The last outcome of ``kind`` (a retry's, if it was retried)."""
        return next((a for a in reversed(self.actions) if a.kind == kind), None)

    def failed(self) -> list[str]:
        """Action kinds whose last outcome is a failure, in the order they were planned."""
        out: list[str] = []
        for a in self.planned:
            last = self.latest(a.kind)
            if last is not None and not last.ok:
                out.append(a.kind)
        return out

    def unfinished(self) -> list[Action]:
        """Planned actions with no outcome yet (never started, or cut short by a crash)."""
        done = self.done()
        return [a for a in self.planned if a.kind not in done]

    def plan(self, actions: Sequence[Action]) -> list[Action]:
        """Add the actions not planned yet, in the switch's order; the ones added."""
        known = {a.kind for a in self.planned}
        new = [a for a in actions if a.kind not in known]
        order = {k: i for i, k in enumerate(ACTION_ORDER)}
        self.planned = sorted([*self.planned, *new], key=lambda a: order.get(a.kind, 99))
        return new

    def add_held(self, ids: Sequence[str]) -> None:
        self.held = sorted({*self.held, *ids})

    # -- codec ------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema": SCHEMA, "tripped": self.tripped}
        if self.tripped:
            out.update(
                since=self.since,
                since_epoch=self.since_epoch,
                incident=incident_to_json(self.incident) if self.incident else None,
                trips=[t.to_json() for t in self.trips],
                planned=[action_to_json(a) for a in self.planned],
                started={k: dict(v) for k, v in self.started.items()},
                actions=[a.to_json() for a in self.actions],
                held=list(self.held),
                last_reminder_epoch=self.last_reminder_epoch,
            )
        elif self.last_incident:
            out.update(
                last_incident=self.last_incident,
                rearmed_at=self.rearmed_at,
                still_held=list(self.still_held),
            )
        return out

    @classmethod
    def from_json(cls, data: object) -> Latch:
        """The latch in ``data`` (parsed JSON). LatchFormatError naming what is wrong."""
        if not isinstance(data, Mapping):
            raise LatchFormatError("not a JSON object")
        tripped = data.get("tripped")
        if not isinstance(tripped, bool):
            raise LatchFormatError("no 'tripped' flag")
        f = _Fields(data)
        if not tripped:
            return cls(
                tripped=False,
                last_incident=f.text("last_incident"),
                rearmed_at=f.text("rearmed_at"),
                still_held=f.texts("still_held"),
            )
        raw_incident = data.get("incident")
        if not isinstance(raw_incident, Mapping):
            raise LatchFormatError("tripped, but 'incident' is missing or not an object")
        return cls(
            tripped=True,
            since=f.text("since"),
            since_epoch=f.number("since_epoch"),
            incident=incident_from_json(raw_incident),
            trips=[_trip(t, i) for i, t in enumerate(f.items("trips"))],
            planned=[planned_from_json(a, i) for i, a in enumerate(f.items("planned"))],
            started=_started(data.get("started", {})),
            actions=[action_from_json(a, i) for i, a in enumerate(f.items("actions"))],
            held=f.texts("held"),
            last_reminder_epoch=f.number("last_reminder_epoch", f.number("since_epoch")),
        )


class _Fields:
    """Typed reads of optional fields, each error naming its field."""

    def __init__(self, data: Mapping[str, Any], where: str = "") -> None:
        self.data = data
        self.where = where

    def _bad(self, key: str, what: str) -> LatchFormatError:
        return LatchFormatError(f"{self.where}{key}: {what}")

    def text(self, key: str, default: str = "") -> str:
        v = self.data.get(key, default)
        if not isinstance(v, str):
            raise self._bad(key, "not a string")
        return v

    def number(self, key: str, default: float = 0.0) -> float:
        v = self.data.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self._bad(key, "not a number")
        return float(v)

    def integer(self, key: str, default: int = 0) -> int:
        v = self.data.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self._bad(key, "not an integer")
        return v

    def items(self, key: str) -> list[Mapping[str, Any]]:
        v = self.data.get(key, [])
        if not isinstance(v, list) or not all(isinstance(x, Mapping) for x in v):
            raise self._bad(key, "not a list of objects")
        return v

    def texts(self, key: str) -> list[str]:
        v = self.data.get(key, [])
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self._bad(key, "not a list of strings")
        return list(v)


def _trip(d: Mapping[str, Any], i: int) -> TripRecord:
    f = _Fields(d, f"trips[{i}].")
    return TripRecord(
        rule=f.text("rule"),
        at=f.text("at"),
        count=f.integer("count"),
        threshold=f.integer("threshold"),
        log_time=f.text("log_time"),
        source=f.text("source"),
        line=f.integer("line"),
        text=f.text("text"),
    )


def action_from_json(d: Mapping[str, Any], i: int = 0) -> ActionRecord:
    f = _Fields(d, f"actions[{i}].")
    ok = d.get("ok")
    if not isinstance(ok, bool):
        raise LatchFormatError(f"actions[{i}].ok: not true or false")
    details = d.get("details", {})
    if not isinstance(details, Mapping):
        raise LatchFormatError(f"actions[{i}].details: not an object")
    attempt = f.integer("attempt", 1)
    return ActionRecord(f.text("kind"), ok, f.text("summary"), f.text("at"), dict(details), attempt)


def action_to_json(a: Action) -> dict[str, Any]:
    return {
        "kind": a.kind,
        "severity": a.severity,
        "rule": a.rule,
        "time": a.time,
        "count": a.count,
        "threshold": a.threshold,
        "window_seconds": a.window_seconds,
        "transports": list(a.transports),
        "addresses": list(a.addresses),
        "offender": a.offender,
        "queue_ids": list(a.queue_ids),
        "domains": list(a.domains),
    }


def planned_from_json(d: Mapping[str, Any], i: int = 0) -> Action:
    f = _Fields(d, f"planned[{i}].")
    kind = f.text("kind")
    if kind not in ACTION_ORDER:
        raise LatchFormatError(f"planned[{i}].kind: {kind!r} is not an action")
    severity = f.text("severity", "trip")
    if severity not in ("warn", "trip", "escalate"):
        raise LatchFormatError(f"planned[{i}].severity: {severity!r}")
    return Action(
        kind,  # checked against ACTION_ORDER above
        severity,  # type: ignore[arg-type]  # checked above
        f.text("rule"),
        f.integer("time"),
        f.integer("count"),
        f.integer("threshold"),
        f.number("window_seconds"),
        tuple(f.texts("transports")),
        tuple(f.texts("addresses")),
        f.text("offender", ""),
        tuple(f.texts("queue_ids")),
        tuple(f.texts("domains")),
    )


def _started(value: object) -> dict[str, Mapping[str, Any]]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, Mapping) for k, v in value.items()
    ):
        raise LatchFormatError("started: not an object of objects")
    return {str(k): dict(v) for k, v in value.items()}


def incident_to_json(i: Incident) -> dict[str, Any]:
    trip = i.trip
    return {
        "id": i.id,
        "rule": i.rule,
        "description": i.description,
        "count": i.count,
        "threshold": i.threshold,
        "window_seconds": i.window_seconds,
        "first_time": i.first_time,
        "trip_time": i.trip_time,
        "trip_line": i.trip_line,
        "trip_source": trip.source if trip is not None else "",
        "trip_lineno": trip.line if trip is not None else 0,
        "top_domains": [list(d) for d in i.top_domains],
        "host": i.host,
        **({"fleet": [list(d) for d in i.fleet]} if i.fleet else {}),  # hosts' shares
    }


def incident_from_json(d: Mapping[str, Any]) -> Incident:
    f = _Fields(d, "incident.")
    trip_time = f.text("trip_time")
    count = f.integer("count")
    first_time = f.text("first_time")
    trip = None
    if trip_time:
        trip = LineRef(
            trip_time, f.text("trip_source"), f.integer("trip_lineno"), f.text("trip_line"), count
        )
    first = None
    if first_time and first_time != trip_time:
        first = LineRef(first_time, "", 0, "", 1)
    domains = d.get("top_domains", [])
    if not isinstance(domains, list) or not all(
        isinstance(x, list) and len(x) == 2 and isinstance(x[0], str) and isinstance(x[1], int)
        for x in domains
    ):
        raise LatchFormatError("incident.top_domains: not a list of [domain, count]")
    fleet = d.get("fleet", [])  # absent before the fleet was added
    if not isinstance(fleet, list) or not all(
        isinstance(x, list) and len(x) == 2 and isinstance(x[0], str) and isinstance(x[1], int)
        for x in fleet
    ):
        raise LatchFormatError("incident.fleet: not a list of [host, count]")
    the_id, rule = f.text("id"), f.text("rule")
    if not the_id or not rule:
        raise LatchFormatError("incident.id and incident.rule: missing")
    return Incident(
        id=the_id,
        rule=rule,
        description=f.text("description"),
        window_seconds=f.number("window_seconds"),
        threshold=f.integer("threshold"),
        trip=trip,
        first_match=first,
        top_domains=tuple((k, n) for k, n in domains),
        host=f.text("host"),
        fleet=tuple((k, n) for k, n in fleet),
    )
