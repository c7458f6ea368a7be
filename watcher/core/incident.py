"""One incident: which rule tripped, on which line, when. Pure data.

The page, the command's placeholders, the latch and the incident report all
speak of the same :class:`Incident`; the report adds the evidence
(:class:`watcher.reports.model.IncidentReport`).
"""

from __future__ import annotations

from dataclasses import dataclass

from watcher.core.times import to_datetime

MANUAL = "manual"  # the rule name of a trip by hand (``stormwatch trip``)


@dataclass(frozen=True, slots=True)
class LineRef:
    """One log line: its log time (ISO 8601, in the log's zone), place, text,
    and the rule's window count right after it."""

    time: str
    source: str
    line: int
    text: str
    count: int


@dataclass(frozen=True, slots=True)
class Incident:
    """What a page, the latch and a report say about one trip."""

    id: str  # "<UTC time>-<rule>", e.g. "20111016T085252Z-forwarding-loop"
    rule: str
    description: str = ""
    window_seconds: float = 0.0
    threshold: int = 0
    trip: LineRef | None = None  # the line that crossed the threshold (count: the window's)
    first_match: LineRef | None = None  # the rule's first matching line
    top_domains: tuple[tuple[str, int], ...] = ()
    host: str = ""
    report_dir: str = ""  # the incident folder (report.md, report.json, timeline.svg, ...)
    report_summary: tuple[str, ...] = ()  # the top of the report, for the page
    fleet: tuple[tuple[str, int], ...] = ()  # a trip on the fleet's count: each host's share

    @property
    def count(self) -> int:
        """Matches in the window when it tripped."""
        return self.trip.count if self.trip is not None else 0

    @property
    def trip_time(self) -> str:
        return self.trip.time if self.trip is not None else ""

    @property
    def trip_line(self) -> str:
        return self.trip.text if self.trip is not None else ""

    @property
    def first_time(self) -> str:
        return self.first_match.time if self.first_match is not None else self.trip_time


def incident_id(t_us: int, rule: str) -> str:
    """``<UTC time>-<rule>``: the incident's name, and its folder's."""
    return f"{to_datetime(t_us):%Y%m%dT%H%M%SZ}-{rule}"
