"""The incident report as plain data, and what follows from it (what escaped, when).

An :class:`IncidentReport` is an :class:`~watcher.core.incident.Incident` with
its evidence: the matching lines, their counts per domain and sender, the
actions the kill switch took and what it held. It holds no pipeline objects:
:mod:`watcher.reports.build` makes one from a pipeline (replay or live),
:mod:`watcher.reports.codec` writes and reads it as ``report.json``, and
:mod:`watcher.reports.markdown` and :mod:`watcher.reports.svg` render it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from watcher.core.detect import recipient_domain
from watcher.core.incident import Incident
from watcher.core.latch import ActionRecord
from watcher.core.pipeline import Evidence
from watcher.core.times import from_iso

Mode = Literal["live", "replay"]
StopBasis = Literal["freeze", "trip-line", "not-stopped"]


@dataclass(frozen=True, slots=True)
class OtherRule:
    """What another rule saw in the same log (for a trip by a forwarding loop, the
    backscatter rule's count is what actually left the host)."""

    name: str
    event: str
    description: str
    matches: int
    before_stop: int
    first: str | None
    tripped: str | None


@dataclass(frozen=True, slots=True)
class IncidentReport:
    """Everything a report needs, as plain data."""

    incident: Incident
    matches: tuple[Evidence, ...] = ()
    matches_total: int = 0
    by_domain: tuple[tuple[str, int], ...] = ()
    by_sender: tuple[tuple[str, int], ...] = ()
    by_origin: tuple[tuple[str, int], ...] = ()  # for rules that count by origin
    actions: tuple[ActionRecord, ...] = ()
    held: tuple[str, ...] = ()
    config_directory: str = "/etc/postfix"
    outflow_stopped_at: str | None = None
    tz: str = "UTC"
    mode: Mode = "replay"
    event: str = "delivery"
    rule_actions: tuple[str, ...] = ()
    other_rules: tuple[OtherRule, ...] = ()
    log_lines_lost: int = 0


def ranked(c: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    """Counts, largest first, then by key."""
    return tuple(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))


def zone_name(tz: tzinfo) -> str:
    key = getattr(tz, "key", None)
    return key if isinstance(key, str) and key else str(tz)


def zone(report: IncidentReport) -> tzinfo:
    """The log's zone; if its name cannot be loaded here, the offset the log times carry."""
    if report.tz in ("", "UTC"):
        return UTC
    try:
        return ZoneInfo(report.tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    for ref in (report.incident.trip, report.incident.first_match):
        if ref is not None:
            offset = datetime.fromisoformat(ref.time).utcoffset()
            if offset is not None:
                return timezone(offset)
    return UTC


def utc_offset(tz: tzinfo, at: datetime) -> str:
    """``UTC+09:00``: the offset of ``tz`` at ``at``."""
    off = at.astimezone(tz).utcoffset() or timedelta(0)
    sign = "-" if off < timedelta(0) else "+"
    minutes = abs(off) // timedelta(minutes=1)
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def by_sender_domain(report: IncidentReport) -> tuple[tuple[str, int], ...]:
    """``by_sender`` summed per domain: lists with VERP bounce addresses (one address
    per message) show up as one row."""
    c: Counter[str] = Counter()
    for sender, n in report.by_sender:
        c[recipient_domain(sender) or sender_label(sender)] += n
    return ranked(c)


def sender_label(key: str) -> str:
    return "<> (null sender)" if key == "" else "(unknown)" if key == "?" else key


# ------------------------------------------------------- what escaped, when


def stop_point(report: IncidentReport) -> tuple[StopBasis, int | None]:
    """When the outflow stopped, in microseconds: a live freeze's time; for a replay the
    trip line's log time (a live run stops there); ``("not-stopped", None)`` otherwise."""
    if report.outflow_stopped_at:
        return "freeze", from_iso(report.outflow_stopped_at)
    trip = report.incident.trip
    if report.mode == "replay" and trip is not None:
        return "trip-line", from_iso(trip.time)
    return "not-stopped", None


def before_stop(report: IncidentReport, t: int, source: str, line: int) -> bool:
    """Was a line logged before the outflow stopped?

    A replay stops *at* the trip line, in log order: lines of the same second on
    the same source count by line number; another source's lines of that second
    count as before (the cautious answer).
    """
    basis, stop = stop_point(report)
    if stop is None:
        return True
    trip = report.incident.trip
    if basis == "trip-line" and trip is not None and t == stop and source == trip.source:
        return line <= trip.line
    return t <= stop


def escaped_before_stop(report: IncidentReport) -> tuple[Evidence, ...]:
    """The matching lines logged before the outflow stopped (all of them if it never did)."""
    return tuple(
        m
        for m in report.matches
        if before_stop(report, m.where.time, m.where.source, m.where.lineno)
    )
