"""What every responder gets and gives back.

A responder acts on one :class:`~watcher.decide.Action` and returns an
:class:`Outcome`: what it did, whether it worked, and the details a human (the
page, the incident report) and ``rearm`` (saved Postfix values, held queue
IDs) need. A responder never raises for an expected failure (a missing
binary, a non-zero exit, a timeout, nothing to do): that is an outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from watcher.core.decide import Action


@dataclass(frozen=True, slots=True)
class Incident:
    """What a page and a report say about one trip. Plain data, built by the daemon."""

    id: str  # "<UTC time>-<rule>", e.g. "20111016T085252Z-forwarding-loop"
    rule: str
    description: str
    count: int
    threshold: int
    window_seconds: float
    first_time: str  # ISO 8601, log time of the rule's first match
    trip_time: str  # ISO 8601, log time of the line that crossed the threshold
    trip_line: str  # that line, verbatim
    top_domains: tuple[tuple[str, int], ...] = ()
    host: str = ""
    report_dir: str = ""  # the incident folder (report.md, report.json, timeline.svg, ...)
    report_summary: tuple[str, ...] = ()  # the top of the report, for the page


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one action went. ``details`` must be JSON-serialisable."""

    kind: str
    ok: bool
    summary: str
    details: dict[str, object] = field(default_factory=dict)


class Responder(Protocol):
    """Acts on actions of one kind."""

    kind: str

    def respond(self, action: Action, incident: Incident) -> Outcome: ...
