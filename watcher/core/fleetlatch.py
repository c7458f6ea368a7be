"""The fleet latch: each watcher's latch and lag, as it publishes them to the fleet. Pure.

Every ``poll_seconds`` a watcher with ``[fleet]`` settings writes its
:class:`HostState` (armed or tripped, by which rule and incident, the log time
of its last event) to the fleet's store, and reads everyone's back.
:class:`FleetLatch` says which other hosts' trips are news: each incident is
reported once per watcher (and once more after a restart).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class HostState:
    host: str
    tripped: bool = False
    incident: str = ""
    rule: str = ""
    offender: str = ""  # contain-offender's "group=key", when one was contained
    last_event: str = ""  # the log time of its last event (ISO 8601), "" before any
    redis: str = "up"  # as that host last saw it
    seen: float = 0.0  # wall clock (epoch seconds) when it wrote this
    cause: str = ""  # the other host's incident that tripped this one (on_trip = "ladder")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, host: str, text: str) -> HostState:
        """Raises ValueError if ``text`` is not a host state."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not an object")
        values: dict[str, object] = {}
        for name, value in data.items():
            want = _TYPES.get(name)
            if want is None:
                continue  # a field of a newer version (or the host): ignored
            if not isinstance(value, want) or (want != (bool,) and isinstance(value, bool)):
                raise ValueError(f"{name}: {value!r}")
            values[name] = (
                float(value) if isinstance(value, int | float) and name == "seen" else value
            )
        values["host"] = host  # the hash field is the truth
        return cls(**values)  # type: ignore[arg-type]  # each value checked above


_TYPES: dict[str, tuple[type, ...]] = {
    "tripped": (bool,), "incident": (str,), "rule": (str,), "offender": (str,),
    "last_event": (str,), "redis": (str,), "seen": (int, float), "cause": (str,),
}  # fmt: skip


class FleetLatch:
    """Which other hosts' trips this watcher has not reported yet."""

    def __init__(self, me: str) -> None:
        self.me = me
        self._known: set[tuple[str, str]] = set()

    def news(self, states: Iterable[HostState]) -> list[HostState]:
        out: list[HostState] = []
        for s in states:
            key = (s.host, s.incident)
            if s.host == self.me or not s.tripped or not s.incident or key in self._known:
                continue
            self._known.add(key)
            out.append(s)
        return out


def rearm_targets(states: Iterable[HostState], incident: str = "") -> dict[str, str]:
    """``stormwatch fleet rearm``: host -> its own incident, for every host tripped by
    ``incident`` (its own, or the cause of its trip); every tripped host when ""."""
    return {
        s.host: s.incident
        for s in states
        if s.tripped and s.incident and (not incident or incident in (s.incident, s.cause))
    }
