"""Incidents for tests, in the flat shape a page shows them (count, first/trip time, line)."""

from __future__ import annotations

from dataclasses import replace

from watcher.core.incident import Incident, LineRef


def make_incident(
    id: str,
    rule: str,
    description: str = "",
    count: int = 0,
    threshold: int = 0,
    window_seconds: float = 0.0,
    first_time: str = "",
    trip_time: str = "",
    trip_line: str = "",
    top_domains: tuple[tuple[str, int], ...] = (),
    host: str = "",
) -> Incident:
    """An :class:`Incident` whose trip line and first match are given as text."""
    return Incident(
        id=id,
        rule=rule,
        description=description,
        window_seconds=window_seconds,
        threshold=threshold,
        trip=LineRef(trip_time, "test.log", 1, trip_line, count),
        first_match=LineRef(first_time, "test.log", 1, "", 1) if first_time else None,
        top_domains=top_domains,
        host=host,
    )


def with_line(incident: Incident, text: str) -> Incident:
    """``incident`` tripped by a line reading ``text``."""
    assert incident.trip is not None
    return replace(incident, trip=replace(incident.trip, text=text))
