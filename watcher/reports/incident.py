"""The incident report: what the admin of the seed incident spent five hours building by hand.

:class:`IncidentData` is plain data (no pipeline objects). It is built from a
finished (or running) :class:`~watcher.pipeline.Pipeline` by
:func:`incident_data_from_replay` -- for ``stormwatch report FILE...`` and, with
the latch, for the folder the kill switch writes when it trips -- and rendered
by pure functions: :func:`render_markdown`, :func:`render_json` (and back,
:func:`json_to_data`), :func:`render_svg`. :func:`write_incident` is the only
I/O: it writes the four files of an incident folder atomically.

``report.json``, ``"schema": 1``. Times are ISO 8601: log times in the log's
zone (``tz``), the times of actions (``at``, ``outflow_stopped_at``) from the
host's clock, in UTC.

=====================  ==================================================================
key                    meaning
=====================  ==================================================================
``schema``             ``1``
``id``                 ``<UTC time>-<rule>``, e.g. ``20111016T085252Z-forwarding-loop``
                       (live: the trip's wall time; replay: the trip line's log time)
``host``               the host the log is from
``mode``               ``live`` (the kill switch acted) or ``replay`` (nothing was done)
``tz``                 IANA name of the zone log times are shown in
``rule``               the rule's name
``description``        the rule's description
``event``              what it counts: ``delivery`` | ``forwarding-loop`` | ``bounce-notice``
``window_seconds``     the rule's window
``threshold``          its ``trip_at`` (0 if it has none)
``rule_actions``       the actions the rule asks for, in the order the switch runs them
``trip``               the line that crossed the threshold: ``{time, source, line, text,
                       count}`` (``count``: matches in the window then), or ``null``
``first_match``        the rule's first matching line, same shape (``count`` 1), or ``null``
``matches_total``      how many lines the rule matched (``matches`` may hold fewer)
``matches``            the matching lines in log order: ``[{time, source, line, text,
                       domain, sender, qid}]``; ``domain``: where the message goes (a
                       delivery's recipient domain; for a bounce notice, the original
                       sender's); ``sender``: the envelope sender (``""`` null sender,
                       ``"?"`` unknown; for a bounce notice the original message's)
``by_domain``          ``[[domain, count], ...]`` over all matches, largest first
``by_sender``          ``[[sender, count], ...]`` likewise
``by_sender_domain``   derived (ignored when read back): ``by_sender`` summed per domain
``actions``            the latch's outcomes: ``[{kind, ok, summary, at, details}]``
``held``               queue IDs put on hold
``config_directory``   the Postfix instance's ``config_directory``
``outflow_stopped_at`` when ``freeze-postfix`` succeeded (host clock, UTC), or ``null``
``escaped``            derived (ignored when read back): ``{basis, stop, count,
                       by_domain}``: matches logged before the outflow stopped.
                       ``basis``: ``freeze`` (live; ``stop`` = ``outflow_stopped_at``),
                       ``trip-line`` (replay: a live run would have stopped there),
                       ``not-stopped`` (live, no successful freeze: every match counts)
``other_rules``        every other rule: ``[{name, event, description, matches,
                       before_stop, first, tripped}]`` (``first``/``tripped``: log times
                       or ``null``; ``before_stop`` as in ``escaped``)
``log_lines_lost``     lines the syslog daemon/journald reported dropping: if not 0, the
                       counts are lower bounds
=====================  ==================================================================
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any, Literal, NamedTuple
from xml.sax.saxutils import escape as _xml_escape
from xml.sax.saxutils import quoteattr
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from watcher.core.detect import recipient_domain
from watcher.core.events import MICROS
from watcher.core.parse import QID_RE
from watcher.core.pipeline import Pipeline, Where
from watcher.core.times import iso
from watcher.state.files import DIR_MODE, atomic_write_bytes, atomic_write_json, ensure_state_dir

SCHEMA = 1
MANUAL = "manual"  # the rule name of a trip by hand (as in watcher.responders.killswitch)
MAX_MATCHES = 5000
ORDER = ("freeze-postfix", "hold-bounces", "stop-fetchmail", "command", "notify")
FILES = ("report.md", "report.json", "timeline.svg", "evidence.log")
TABLE_ROWS = 25
MAX_BUCKETS = 180
PAD_BEFORE, PAD_AFTER = 3, 1  # empty buckets shown around the matches

Mode = Literal["live", "replay"]
StopBasis = Literal["freeze", "trip-line", "not-stopped"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


# ------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class LineRef:
    """One log line: its log time (ISO 8601, log zone), place, text, and the window count."""

    time: str
    source: str
    line: int
    text: str
    count: int


class Match(NamedTuple):
    """One matching log line."""

    time_us: int
    source: str
    line: int
    text: str
    domain: str
    sender: str
    qid: str


class ActionRecord(NamedTuple):
    """One outcome from the latch: ``at`` is the host's clock (ISO 8601, UTC)."""

    kind: str
    ok: bool
    summary: str
    at: str
    details: dict[str, Any]


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
class IncidentData:
    """Everything a report needs, as plain data."""

    id: str
    host: str
    rule: str
    description: str
    window_seconds: float
    threshold: int
    trip: LineRef | None
    first_match: LineRef | None
    matches: tuple[Match, ...] = ()
    matches_total: int = 0
    by_domain: tuple[tuple[str, int], ...] = ()
    by_sender: tuple[tuple[str, int], ...] = ()
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


# ------------------------------------------------------------------------ times


def us_to_iso(t: int, tz: tzinfo) -> str:
    """Microseconds since the epoch -> ISO 8601 in ``tz`` (exact: no float)."""
    return iso(t, tz)


def iso_to_us(value: str) -> int:
    """ISO 8601 with an offset -> microseconds since the epoch. ValueError if naive."""
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        raise ValueError(f"{value!r}: no UTC offset")
    return (dt - _EPOCH) // _US


def zone_name(tz: tzinfo) -> str:
    key = getattr(tz, "key", None)
    return key if isinstance(key, str) and key else str(tz)


def _zone(data: IncidentData) -> tzinfo:
    """The log's zone; if its name cannot be loaded here, the offset the log times carry."""
    if data.tz in ("", "UTC"):
        return UTC
    try:
        return ZoneInfo(data.tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    for ref in (data.trip, data.first_match):
        if ref is not None:
            offset = datetime.fromisoformat(ref.time).utcoffset()
            if offset is not None:
                return timezone(offset)
    return UTC


# ------------------------------------------------------------- recording facts


def _ref(w: Where | None, tz: tzinfo, count: int) -> LineRef | None:
    if w is None:
        return None
    return LineRef(us_to_iso(w.time, tz), w.source, w.lineno, w.text, count)


def _ranked(c: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))


def _host_of(line: str) -> str:
    """The syslog host field of a classic or RFC 3339 line ("" if not found)."""
    parts = line.split(None, 5)
    if parts and parts[0][:1].isdigit() and len(parts) > 1:
        return parts[1]  # "2026-11-28T02:50:43.123456+00:00 host prog[pid]: ..."
    return parts[3] if len(parts) > 4 and ":" in parts[2] else ""


def incident_id(t_us: int, rule: str) -> str:
    """``<UTC time>-<rule>``: the incident folder's name."""
    return f"{_EPOCH + timedelta(microseconds=t_us):%Y%m%dT%H%M%SZ}-{rule}"


def tripping_rule(pipeline: Pipeline) -> str | None:
    """The rule whose trip tripped the switch, if any."""
    trip = pipeline.switch_tripped
    if trip is None:
        return None
    return next((n for n, s in pipeline.summaries.items() if s.tripped is trip), None)


def incident_data_from_replay(
    pipeline: Pipeline,
    rule: str,
    tz: tzinfo,
    *,
    max_matches: int = MAX_MATCHES,
    host: str | None = None,
    config_directory: str = "/etc/postfix",
    latch: Mapping[str, Any] | None = None,
    since_us: int | None = None,
) -> IncidentData:
    """An incident for ``rule`` from what ``pipeline`` saw.

    Without ``latch`` it is a replay: nothing was done, and a live run would have
    stopped the outflow at the trip line. With ``latch`` (the dict in
    ``latch.json``, after the trip's actions ran) it is the live incident: its id,
    host, outcomes, held queue IDs and the time the outflow stopped come from there.

    ``since_us``: only lines logged from then on (log time) belong to the incident;
    the counts are then made from those lines, not from the rule's running totals
    (which, in a watcher that has run for weeks, hold every legitimate bounce since
    it started). Raises ValueError for a rule the pipeline does not have.
    """
    try:
        s = pipeline.summaries[rule]
    except KeyError:
        raise ValueError(f"no rule {rule!r} in this pipeline") from None
    r = s.rule
    kept = [e for e in s.evidence if _since(e.where, since_us)]
    evidence = [e.where for e in kept]
    all_matches = [
        Match(e.where.time, e.where.source, e.where.lineno, e.where.text, e.domain, e.sender, e.qid)
        for e in kept
    ]
    matches = tuple(all_matches[:max_matches])
    if since_us is None:
        first_where, total = s.first, s.matches
        by_domain, by_sender = _ranked(s.by_domain), _ranked(s.by_sender)
    else:
        first_where, total = (evidence[0] if evidence else None), len(evidence)
        by_domain = _ranked(Counter(m.domain for m in all_matches))
        by_sender = _ranked(Counter(m.sender for m in all_matches))
    tripped = s.tripped if s.tripped is None or _since(s.tripped, since_us) else None
    trip = _ref(tripped, tz, s.count_at_trip)
    first = _ref(first_where, tz, 1)
    anchor = tripped or first_where
    actions: tuple[ActionRecord, ...] = ()
    held: tuple[str, ...] = ()
    stopped: str | None = None
    mode: Mode = "replay"
    the_id = incident_id(anchor.time, rule) if anchor is not None else f"replay-{rule}"
    the_host = host if host is not None else (_host_of(anchor.text) if anchor else "")
    if latch is not None:
        mode = "live"
        actions, held, stopped = _from_latch(latch)
        inc = latch.get("incident") or {}
        the_id = str(inc.get("id") or the_id)
        the_host = host if host is not None else str(inc.get("host") or the_host)
    data = IncidentData(
        id=the_id,
        host=the_host,
        rule=rule,
        description=r.description,
        window_seconds=float(r.window.seconds),
        threshold=r.trip_at or 0,
        trip=trip,
        first_match=first,
        matches=matches,
        matches_total=total,
        by_domain=by_domain,
        by_sender=by_sender,
        actions=actions,
        held=held,
        config_directory=config_directory,
        outflow_stopped_at=stopped,
        tz=zone_name(tz),
        mode=mode,
        event=r.match.event,
        rule_actions=tuple(k for k in ORDER if k in r.actions),
        log_lines_lost=pipeline.loss.lost,
    )
    basis, stop = stop_point(data)
    others: list[OtherRule] = []
    for name, o in pipeline.summaries.items():
        if name == rule:
            continue
        seen = [e.where for e in o.evidence if _since(e.where, since_us)]
        o_first = o.first if since_us is None else (seen[0] if seen else None)
        o_tripped = o.tripped if o.tripped is None or _since(o.tripped, since_us) else None
        others.append(
            OtherRule(
                name=o.rule.name,
                event=o.rule.match.event,
                description=o.rule.description,
                matches=o.matches if since_us is None else len(seen),
                before_stop=sum(
                    1 for w in seen if _before(w.time, w.source, w.lineno, basis, stop, trip)
                ),
                first=us_to_iso(o_first.time, tz) if o_first is not None else None,
                tripped=us_to_iso(o_tripped.time, tz) if o_tripped is not None else None,
            )
        )
    return replace(data, other_rules=tuple(others))


def incident_data_from_latch(
    latch: Mapping[str, Any], tz: tzinfo, *, config_directory: str = "/etc/postfix"
) -> IncidentData:
    """An incident from ``latch.json`` alone: for a trip by hand (``stormwatch trip``),
    which no rule counted, and for an archived latch that has no report."""
    inc = latch.get("incident") or {}
    trips = latch.get("trips") or [{}]
    first = trips[0] if isinstance(trips[0], Mapping) else {}
    trip_time = str(inc.get("trip_time") or "")
    trip = None
    if trip_time:
        trip = LineRef(
            trip_time,
            str(first.get("source", "")),
            int(first.get("line", 0)),
            str(inc.get("trip_line", "")),
            int(inc.get("count", 0)),
        )
    actions, held, stopped = _from_latch(latch)
    rule = str(inc.get("rule", MANUAL))
    return IncidentData(
        id=str(inc.get("id", "")),
        host=str(inc.get("host", "")),
        rule=rule,
        description=str(inc.get("description", "")),
        window_seconds=float(inc.get("window_seconds", 0.0)),
        threshold=int(inc.get("threshold", 0)),
        trip=trip,
        first_match=None,
        matches_total=int(inc.get("count", 0)),
        by_domain=_pairs(inc.get("top_domains", ())),
        actions=actions,
        held=held,
        config_directory=config_directory,
        outflow_stopped_at=stopped,
        tz=zone_name(tz),
        mode="live",
        rule_actions=tuple(a.kind for a in actions),
    )


def _since(w: Where, since_us: int | None) -> bool:
    return since_us is None or w.time >= since_us


def _from_latch(
    latch: Mapping[str, Any],
) -> tuple[tuple[ActionRecord, ...], tuple[str, ...], str | None]:
    actions = tuple(
        ActionRecord(
            str(a.get("kind", "?")),
            bool(a.get("ok")),
            str(a.get("summary", "")),
            str(a.get("at", "")),
            dict(a.get("details") or {}),
        )
        for a in latch.get("actions", ())
    )
    held = tuple(sorted({str(q) for q in latch.get("held", ())}))
    stopped = next((a.at for a in actions if a.kind == "freeze-postfix" and a.ok and a.at), None)
    return actions, held, stopped


# ------------------------------------------------------- what escaped, when


def stop_point(data: IncidentData) -> tuple[StopBasis, int | None]:
    """When the outflow stopped, in microseconds: a live freeze's time; for a replay the
    trip line's log time (a live run stops there); ``("not-stopped", None)`` otherwise."""
    if data.outflow_stopped_at:
        return "freeze", iso_to_us(data.outflow_stopped_at)
    if data.mode == "replay" and data.trip is not None:
        return "trip-line", iso_to_us(data.trip.time)
    return "not-stopped", None


def _before(
    t: int,
    source: str,
    line: int,
    basis: StopBasis,
    stop: int | None,
    trip: LineRef | None,
) -> bool:
    """Was a line logged before the outflow stopped?

    A replay stops *at* the trip line, in log order: lines of the same second on
    the same source count by line number; another source's lines of that second
    count as before (the cautious answer).
    """
    if stop is None:
        return True
    if basis == "trip-line" and trip is not None and t == stop and source == trip.source:
        return line <= trip.line
    return t <= stop


def escaped_before_stop(data: IncidentData) -> tuple[Match, ...]:
    """The matching lines logged before the outflow stopped (all of them if it never did)."""
    basis, stop = stop_point(data)
    return tuple(
        m for m in data.matches if _before(m.time_us, m.source, m.line, basis, stop, data.trip)
    )


# --------------------------------------------------------------------- JSON


def _ref_json(r: LineRef | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {"time": r.time, "source": r.source, "line": r.line, "text": r.text, "count": r.count}


def render_json(data: IncidentData) -> dict[str, Any]:
    """``report.json`` (schema in the module docstring)."""
    tz = _zone(data)
    basis, stop = stop_point(data)
    escaped = escaped_before_stop(data)
    return {
        "schema": SCHEMA,
        "id": data.id,
        "host": data.host,
        "mode": data.mode,
        "tz": data.tz,
        "rule": data.rule,
        "description": data.description,
        "event": data.event,
        "window_seconds": data.window_seconds,
        "threshold": data.threshold,
        "rule_actions": list(data.rule_actions),
        "trip": _ref_json(data.trip),
        "first_match": _ref_json(data.first_match),
        "matches_total": data.matches_total,
        "matches": [
            {
                "time": us_to_iso(m.time_us, tz),
                "source": m.source,
                "line": m.line,
                "text": m.text,
                "domain": m.domain,
                "sender": m.sender,
                "qid": m.qid,
            }
            for m in data.matches
        ],
        "by_domain": [[k, n] for k, n in data.by_domain],
        "by_sender": [[k, n] for k, n in data.by_sender],
        "by_sender_domain": [[k, n] for k, n in by_sender_domain(data)],
        "actions": [
            {"kind": a.kind, "ok": a.ok, "summary": a.summary, "at": a.at, "details": a.details}
            for a in data.actions
        ],
        "held": list(data.held),
        "config_directory": data.config_directory,
        "outflow_stopped_at": data.outflow_stopped_at,
        "escaped": {
            "basis": basis,
            "stop": None if stop is None else us_to_iso(stop, tz),
            "count": len(escaped),
            "by_domain": [[k, n] for k, n in _ranked(Counter(m.domain for m in escaped))],
        },
        "other_rules": [
            {
                "name": o.name,
                "event": o.event,
                "description": o.description,
                "matches": o.matches,
                "before_stop": o.before_stop,
                "first": o.first,
                "tripped": o.tripped,
            }
            for o in data.other_rules
        ],
        "log_lines_lost": data.log_lines_lost,
    }


def _ref_from(d: Any) -> LineRef | None:
    if d is None:
        return None
    return LineRef(
        str(d["time"]), str(d["source"]), int(d["line"]), str(d["text"]), int(d["count"])
    )


def _pairs(rows: Any) -> tuple[tuple[str, int], ...]:
    return tuple((str(k), int(n)) for k, n in rows)


def json_to_data(d: Mapping[str, Any]) -> IncidentData:
    """:func:`render_json`'s output back to :class:`IncidentData` (derived keys ignored).

    Raises ValueError naming what is wrong.
    """
    if not isinstance(d, Mapping):
        raise ValueError("not an incident report: not a JSON object")
    if d.get("schema") != SCHEMA:
        raise ValueError(f"incident report schema {d.get('schema')!r}: expected {SCHEMA}")
    try:
        mode = str(d["mode"])
        if mode not in ("live", "replay"):
            raise ValueError(f"mode {mode!r}: expected 'live' or 'replay'")
        return IncidentData(
            id=str(d["id"]),
            host=str(d["host"]),
            rule=str(d["rule"]),
            description=str(d["description"]),
            window_seconds=float(d["window_seconds"]),
            threshold=int(d["threshold"]),
            trip=_ref_from(d["trip"]),
            first_match=_ref_from(d["first_match"]),
            matches=tuple(
                Match(
                    iso_to_us(str(m["time"])),
                    str(m["source"]),
                    int(m["line"]),
                    str(m["text"]),
                    str(m["domain"]),
                    str(m["sender"]),
                    str(m["qid"]),
                )
                for m in d["matches"]
            ),
            matches_total=int(d["matches_total"]),
            by_domain=_pairs(d["by_domain"]),
            by_sender=_pairs(d["by_sender"]),
            actions=tuple(
                ActionRecord(
                    str(a["kind"]),
                    bool(a["ok"]),
                    str(a["summary"]),
                    str(a["at"]),
                    dict(a["details"]),
                )
                for a in d["actions"]
            ),
            held=tuple(str(q) for q in d["held"]),
            config_directory=str(d["config_directory"]),
            outflow_stopped_at=(
                None if d["outflow_stopped_at"] is None else str(d["outflow_stopped_at"])
            ),
            tz=str(d["tz"]),
            mode="live" if mode == "live" else "replay",
            event=str(d["event"]),
            rule_actions=tuple(str(k) for k in d["rule_actions"]),
            other_rules=tuple(
                OtherRule(
                    str(o["name"]),
                    str(o["event"]),
                    str(o["description"]),
                    int(o["matches"]),
                    int(o["before_stop"]),
                    None if o["first"] is None else str(o["first"]),
                    None if o["tripped"] is None else str(o["tripped"]),
                )
                for o in d["other_rules"]
            ),
            log_lines_lost=int(d["log_lines_lost"]),
        )
    except KeyError as exc:
        raise ValueError(f"incident report: missing key {exc}") from None
    except (TypeError, AttributeError) as exc:
        raise ValueError(f"incident report: wrong shape: {exc}") from None


# ----------------------------------------------------------------- Markdown

# Characters that make Markdown (CommonMark/GFM) inline syntax: emphasis, code,
# links, autolinks, raw HTML, entities, tables, strikethrough. Each may be
# backslash-escaped (CommonMark: any ASCII punctuation).
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&!#])")
# Control and bidi characters: shown as escapes, never passed through.
_UNSAFE = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def _visible(text: str) -> str:
    def esc(m: re.Match[str]) -> str:
        code = ord(m.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _UNSAFE.sub(esc, text)


def md_escape(text: str) -> str:
    """Log text as inline Markdown that renders as the same characters, nothing more."""
    return _MD_SPECIAL.sub(r"\\\1", _visible(text))


def _code_block(lines: Iterable[str]) -> list[str]:
    """A fenced block that no line can close: the fence is longer than any backtick run."""
    body = [_visible(line) for line in lines]
    longest = max((len(run) for line in body for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, *body, fence]


def _local(iso: str | None, tz: tzinfo, *, seconds: bool = True) -> str:
    """An ISO time as 'YYYY-MM-DD HH:MM:SS' in ``tz``."""
    if not iso:
        return "-"
    dt = datetime.fromisoformat(iso).astimezone(tz)
    return f"{dt:%Y-%m-%d %H:%M:%S}" + (f".{dt.microsecond // 1000:03d}" if not seconds else "")


def _offset(tz: tzinfo, at: datetime) -> str:
    off = at.astimezone(tz).utcoffset() or timedelta(0)
    sign = "-" if off < timedelta(0) else "+"
    minutes = abs(off) // timedelta(minutes=1)
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _what(event: str, n: int) -> str:
    noun = {
        "delivery": "delivery" if n == 1 else "deliveries",
        "forwarding-loop": "forwarding loop" if n == 1 else "forwarding loops",
        "bounce-notice": "bounce notification" if n == 1 else "bounce notifications",
    }.get(event, "matching line" if n == 1 else "matching lines")
    return f"{n:,} {noun}"


def _table(title: str, header: str, rows: Sequence[tuple[str, int]], label: Any) -> list[str]:
    out = [f"## {title}", ""]
    if not rows:
        return [*out, "(none)", ""]
    out += [f"| {header} | count |", "| --- | ---: |"]
    out += [f"| {md_escape(label(k))} | {n:,} |" for k, n in rows[:TABLE_ROWS]]
    if len(rows) > TABLE_ROWS:
        rest = sum(n for _, n in rows[TABLE_ROWS:])
        out.append(f"| ... {len(rows) - TABLE_ROWS:,} more (see report.json) | {rest:,} |")
    return [*out, ""]


# Table headers per rule event: (destination domain, sender).
_COLUMNS = {
    "delivery": ("recipient domain", "envelope sender"),
    "forwarding-loop": ("looping recipient's domain", "envelope sender (the list that sent it)"),
    "bounce-notice": ("domain the bounce goes to", "original sender (the bounce goes there)"),
}


def by_sender_domain(data: IncidentData) -> tuple[tuple[str, int], ...]:
    """``by_sender`` summed per domain: lists with VERP bounce addresses (one address
    per message) show up as one row."""
    c: Counter[str] = Counter()
    for sender, n in data.by_sender:
        c[recipient_domain(sender) or _sender_label(sender)] += n
    return _ranked(c)


def _sender_label(key: str) -> str:
    return "<> (null sender)" if key == "" else "(unknown)" if key == "?" else key


def summary_lines(data: IncidentData) -> list[str]:
    """The top of the report as plain sentences (for the page too)."""
    tz = _zone(data)
    out: list[str] = []
    if data.rule == MANUAL and data.trip is not None:
        out.append(f"Tripped by hand at {_local(data.trip.time, tz)}: {data.description}")
    elif data.trip is not None:
        out.append(
            f"Rule {data.rule} tripped at {_local(data.trip.time, tz)} ({data.tz}): "
            f"{data.trip.count} in {data.window_seconds:g} s (trip_at {data.threshold}), "
            f"{data.trip.source} line {data.trip.line}."
        )
    else:
        out.append(f"Rule {data.rule} did not trip.")
    span = ""
    if data.matches:
        span = (
            f", {_local(us_to_iso(data.matches[0].time_us, tz), tz)} to "
            f"{_local(us_to_iso(data.matches[-1].time_us, tz), tz)}"
        )
    out.append(f"{_what(data.event, data.matches_total)} matched{span}.")
    if data.event == "forwarding-loop" and data.by_sender:
        top = ", ".join(f"{k} {n:,}" for k, n in by_sender_domain(data)[:3])
        out.append(f"The looping mail came from (sender domains): {top}.")
    elif data.by_domain:
        top = ", ".join(f"{k} {n:,}" for k, n in data.by_domain[:3])
        out.append(f"Top destinations: {top}.")
    basis, _ = stop_point(data)
    escaped = len(escaped_before_stop(data))
    if basis == "freeze":
        out.append(
            f"Outflow stopped at {_local(data.outflow_stopped_at, tz, seconds=False)} "
            f"(host clock); {_what(data.event, escaped)} logged before that."
        )
    elif basis == "trip-line":
        out.append(
            f"Replay: nothing was done. A live run would have stopped the outflow at the "
            f"trip line; {_what(data.event, escaped)} logged up to it."
        )
    else:
        out.append(
            f"The outflow was NOT stopped: all {_what(data.event, escaped)} count as escaped."
        )
    for o in data.other_rules:
        if o.event == "delivery" and o.matches:
            out.append(
                f"Rule {o.name}: {o.before_stop:,} of {o.matches:,} deliveries left before "
                "the stop."
            )
    if data.held:
        out.append(f"{len(data.held):,} message(s) on hold: nothing was deleted.")
    if data.log_lines_lost:
        out.append(
            f"WARNING: the log reports {data.log_lines_lost:,} lines lost to rate limiting: "
            "counts are lower bounds."
        )
    return out


def _timeline(data: IncidentData, tz: tzinfo) -> list[str]:
    rows: list[tuple[int, int, str, str]] = []  # (time, order, when, what)

    def log_row(ref: LineRef | None, order: int, what: str) -> None:
        if ref is not None:
            where = md_escape(f"{ref.source}:{ref.line}")
            rows.append((iso_to_us(ref.time), order, _local(ref.time, tz), f"{what} ({where})"))

    log_row(data.first_match, 0, "first matching line")
    if data.trip is not None:
        log_row(
            data.trip,
            1,
            "**tripped by hand**"
            if data.rule == MANUAL
            else f"**threshold crossed**: {data.trip.count} in {data.window_seconds:g} s "
            f"(trip_at {data.threshold})",
        )
    for i, a in enumerate(data.actions):
        if not a.at:
            continue
        state = "ok" if a.ok else "**FAILED**"
        rows.append(
            (
                iso_to_us(a.at),
                10 + i,
                _local(a.at, tz, seconds=False) + " (host clock)",
                f"{md_escape(a.kind)}: {state}: {md_escape(a.summary)}",
            )
        )
    if data.outflow_stopped_at:
        rows.append(
            (
                iso_to_us(data.outflow_stopped_at),
                99,
                _local(data.outflow_stopped_at, tz, seconds=False) + " (host clock)",
                "**outflow stopped**",
            )
        )
    elif data.mode == "replay" and data.trip is not None:
        t = iso_to_us(data.trip.time)
        rows.append((t, 98, _local(data.trip.time, tz), "outflow would have stopped here (replay)"))
    if data.matches:
        last = data.matches[-1]
        rows.append(
            (
                last.time_us,
                200,
                _local(us_to_iso(last.time_us, tz), tz),
                f"last matching line recorded ({md_escape(f'{last.source}:{last.line}')})",
            )
        )
    rows.sort(key=lambda r: (r[0], r[1]))
    return ["| time | what |", "| --- | --- |", *(f"| {w} | {what} |" for _, _, w, what in rows)]


def _commands(data: IncidentData) -> list[str]:
    cfg = data.config_directory
    q = shlex.quote
    valid = [qid for qid in data.held if QID_RE.fullmatch(qid)]
    example = valid[0] if valid else "QUEUE_ID"
    out = [
        "## Held mail: inspect or release",
        "",
        f"{len(valid):,} queue ID(s) held. Held mail never expires and nothing was deleted."
        if data.held
        else "No queue ID was held by this incident.",
        "",
    ]
    if data.held:
        out += ["Queue IDs:", ""]
        out += _code_block(" ".join(valid[i : i + 8]) for i in range(0, len(valid), 8))
        bad = len(data.held) - len(valid)
        if bad:
            out += ["", f"(left out, not a valid queue ID: {bad})"]
        out.append("")
    out += [
        'List the queue (JSON lines; held mail has `"queue_name": "hold"`):',
        "",
        *_code_block([f"postqueue -c {q(cfg)} -j"]),
        "",
        "Read one message:",
        "",
        *_code_block([f"postcat -c {q(cfg)} -q {example}"]),
        "",
        "Release one message (it is delivered when the outflow is open again):",
        "",
        *_code_block([f"postsuper -c {q(cfg)} -H {example}"]),
        "",
        "Undo the trip (restore the Postfix settings) and release everything it held:",
        "",
        *_code_block(["stormwatch rearm --release-held"]),
        "",
        "(`stormwatch rearm` without `--release-held` restores Postfix and keeps the mail "
        "on hold.) Do not use `postsuper -d`: it deletes, irreversibly.",
        "",
    ]
    return out


def render_markdown(data: IncidentData) -> str:
    """``report.md``: the report for a human."""
    tz = _zone(data)
    ref_time = datetime.fromisoformat(data.trip.time) if data.trip else datetime.now(UTC)
    out = [
        f"# Incident {md_escape(data.id)}" + (f" on {md_escape(data.host)}" if data.host else ""),
        "",
        f"Rule **{md_escape(data.rule)}**"
        + (f" ({md_escape(data.description)})" if data.description else "")
        + f": trips at {data.threshold} in {data.window_seconds:g} s."
        + (" **Replay of a finished log: nothing was done.**" if data.mode == "replay" else ""),
        f"Log times are in {md_escape(data.tz)} ({_offset(tz, ref_time)}); "
        "action times are the host's clock.",
        "",
        "## Summary",
        "",
        *(f"- {md_escape(s)}" for s in summary_lines(data)),
        "",
        "## Timeline",
        "",
        *_timeline(data, tz),
        "",
    ]
    if data.trip is not None:
        out += ["The line that tripped the switch:", "", *_code_block([data.trip.text]), ""]
    if data.mode == "replay" and data.rule_actions:
        out += [
            "A live run would have taken these actions, in this order: "
            + ", ".join(md_escape(k) for k in data.rule_actions)
            + ".",
            "",
        ]
    domain_col, sender_col = _COLUMNS.get(data.event, _COLUMNS["delivery"])
    out += _table("Per destination domain", domain_col, data.by_domain, str)
    if [k for k, _ in data.by_sender] == [""]:
        out += [
            "## Per sender",
            "",
            "All from the null sender (`<>`): these are bounces, and each went back to the "
            "original sender; the destination domains above are those senders' domains.",
            "",
        ]
    else:
        out += _table("Per sender domain", "sender's domain", by_sender_domain(data), str)
        out += _table("Per sender", sender_col, data.by_sender, _sender_label)
    escaped = escaped_before_stop(data)
    basis, _ = stop_point(data)
    out += ["## What escaped before the stop", ""]
    if basis == "not-stopped":
        out.append(f"The outflow was **not** stopped: {_what(data.event, len(escaped))} in all.")
    else:
        until = (
            f"{_local(data.outflow_stopped_at, tz, seconds=False)} (host clock)"
            if basis == "freeze"
            else f"the trip line, {_local(data.trip.time if data.trip else None, tz)} (replay)"
        )
        out.append(
            f"{_what(data.event, len(escaped))} logged before the outflow stopped at {until}."
        )
    if len(data.matches) < data.matches_total:
        out.append(
            f"(Only the first {len(data.matches):,} of {data.matches_total:,} matching lines "
            "were recorded: this count covers those.)"
        )
    out.append("")
    if escaped:
        out += _table(
            "Escaped, per destination domain",
            "domain",
            _ranked(Counter(m.domain for m in escaped)),
            str,
        )[2:]
    others = [o for o in data.other_rules if o.matches]
    if others:
        out += [
            "What the other rules counted in the same log (before the stop: for `delivery` "
            "rules, mail that left the host):",
            "",
            "| rule | counts | matches | before the stop | first | tripped |",
            "| --- | --- | ---: | ---: | --- | --- |",
        ]
        out += [
            f"| {md_escape(o.name)} | {md_escape(o.event)} | {o.matches:,} | {o.before_stop:,} "
            f"| {_local(o.first, tz)} | {_local(o.tripped, tz)} |"
            for o in others
        ]
        out.append("")
    if data.actions:
        out += ["## Actions", "", "| action | result | at (host clock) | summary |"]
        out.append("| --- | --- | --- | --- |")
        out += [
            f"| {md_escape(a.kind)} | {'ok' if a.ok else '**FAILED**'} "
            f"| {_local(a.at, tz, seconds=False) if a.at else '-'} | {md_escape(a.summary)} |"
            for a in data.actions
        ]
        out.append("")
    out += _commands(data)
    out += [
        "## Files",
        "",
        "- `report.json`: this report, machine-readable (schema 1)",
        "- `timeline.svg`: matching lines per 10 s around the trip",
        f"- `evidence.log`: the {len(data.matches):,} matching log lines, in order",
        "",
    ]
    return "\n".join(out)


# ---------------------------------------------------------------------- SVG

SVG_W, SVG_H = 960, 420
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 92, 96, 66
_FONT = "DejaVu Sans, Verdana, Arial, sans-serif"
_BAR, _TRIP, _STOP, _THRESH = "#4a78b0", "#c62828", "#2e7d32", "#e07b00"
# a white outline under text drawn over bars keeps it readable
_HALO = {"stroke": "#ffffff", "stroke_width": "3", "paint_order": "stroke"}


def _nice_step(top: float) -> float:
    """A 1/2/5 x 10^k step that cuts ``top`` into at most 5 parts."""
    raw = max(top, 1e-9) / 5
    mag = 10.0 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1.0, 2.0, 5.0, 10.0) if m * mag >= raw)


def _fmt_num(v: float) -> str:
    return f"{v:,.0f}" if v == int(v) else f"{v:.2g}" if v < 1 else f"{v:.1f}"


@dataclass(frozen=True, slots=True)
class Chart:
    """The buckets a timeline shows (``start_us``: the first bucket's start)."""

    start_us: int
    bucket_us: int
    counts: tuple[int, ...]
    before: int = 0  # matches earlier than the chart
    after: int = 0  # matches later than the chart
    labels: tuple[str, ...] = field(default_factory=tuple)


def chart_buckets(data: IncidentData, bucket_seconds: int = 10) -> Chart:
    """Matches per bucket, aligned on multiples of ``bucket_seconds``, from the first
    match to the last (and the trip), at most ``MAX_BUCKETS`` around the trip."""
    b = bucket_seconds * MICROS
    times = [m.time_us for m in data.matches]
    trip_us = iso_to_us(data.trip.time) if data.trip else None
    points = times + ([trip_us] if trip_us is not None else [])
    if not points:
        return Chart(0, b, (0,))
    # a little quiet before and after: where the storm starts and ends shows
    lo, hi = min(points) // b - PAD_BEFORE, max(points) // b + PAD_AFTER
    if hi - lo + 1 > MAX_BUCKETS:
        centre = (trip_us if trip_us is not None else times[0]) // b
        first = lo
        lo = max(lo, centre - MAX_BUCKETS // 3)
        hi = min(hi, lo + MAX_BUCKETS - 1)
        lo = max(first, hi - MAX_BUCKETS + 1)
    counts = [0] * (hi - lo + 1)
    before = after = 0
    for t in times:
        i = t // b - lo
        if i < 0:
            before += 1
        elif i >= len(counts):
            after += 1
        else:
            counts[i] += 1
    return Chart(lo * b, b, tuple(counts), before, after)


def _t(x: float, y: float, text: str, *, cls: str, anchor: str = "start", **style: str) -> str:
    extra = "".join(f" {k.replace('_', '-')}={quoteattr(v)}" for k, v in style.items())
    return (
        f'<text class="{cls}" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>'
        f"{_xml_escape(_visible(text))}</text>"
    )


def render_svg(data: IncidentData, *, bucket_seconds: int = 10) -> str:
    """``timeline.svg``: matching lines per ``bucket_seconds`` around the trip.

    Bars: one ``<rect class="bar">`` per bucket (``data-start``/``data-count``).
    The threshold is drawn as the rule's *rate* at the bucket's scale
    (``trip_at * bucket / window``): a bar above the dashed line is faster than
    the rule allows. A red line marks the trip, a green one the outflow's stop.
    """
    tz = _zone(data)
    chart = chart_buckets(data, bucket_seconds)
    n = len(chart.counts)
    pw, ph = SVG_W - _LEFT - _RIGHT, SVG_H - _TOP - _BOTTOM
    base_y = _TOP + ph
    bw = pw / n
    rate = (
        data.threshold * bucket_seconds / data.window_seconds
        if data.threshold and data.window_seconds
        else None
    )
    top = max([*chart.counts, rate or 0.0, 1.0])
    step = _nice_step(top)
    y_max = step * math.ceil(top / step - 1e-9)
    if y_max < top * 1.05:
        y_max += step

    def x_of(t_us: int) -> float:
        return _LEFT + (t_us - chart.start_us) / chart.bucket_us * bw

    def y_of(v: float) -> float:
        return base_y - v / y_max * ph

    def hms(t_us: int, fmt: str = "%H:%M:%S") -> str:
        return f"{(_EPOCH + timedelta(microseconds=t_us)).astimezone(tz):{fmt}}"

    first_day = hms(chart.start_us, "%Y-%m-%d")
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{SVG_W}" height="{SVG_H}" '
        f'viewBox="0 0 {SVG_W} {SVG_H}" font-family={quoteattr(_FONT)} font-size="12">',
        f"<title>{_xml_escape(_visible(f'{data.rule} on {data.host}: timeline'))}</title>",
        f'<rect class="background" x="0" y="0" width="{SVG_W}" height="{SVG_H}" fill="#ffffff"/>',
        _t(
            _LEFT,
            22,
            f"{data.rule}"
            + (f" on {data.host}" if data.host else "")
            + f": {data.matches_total:,} matching lines"
            + (" (replay)" if data.mode == "replay" else ""),
            cls="title",
            font_size="16",
            font_weight="bold",
        ),
        _t(
            _LEFT,
            40,
            f"matching lines per {bucket_seconds} s, {first_day}, log time "
            f"({data.tz}, {_offset(tz, datetime.fromtimestamp(chart.start_us / MICROS, UTC))})"
            + (
                f"; not shown: {chart.before:,} earlier, {chart.after:,} later"
                if chart.before or chart.after
                else ""
            ),
            cls="subtitle",
            fill="#444444",
        ),
    ]
    # legend
    lx, ly = _LEFT, 62
    out.append(f'<rect x="{lx}" y="{ly - 9}" width="12" height="10" fill="{_BAR}"/>')
    out.append(_t(lx + 16, ly, f"matches per {bucket_seconds} s", cls="legend"))
    lx += 150
    if rate is not None:
        out.append(
            f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 24}" y2="{ly - 4}" stroke="{_THRESH}" '
            'stroke-width="2" stroke-dasharray="6,4"/>'
        )
        out.append(
            _t(
                lx + 30,
                ly,
                f"trip rate: {data.threshold} per {data.window_seconds:g} s "
                f"= {_fmt_num(rate)} per {bucket_seconds} s (bars above it are faster)",
                cls="legend",
            )
        )
        lx += 420
    if data.trip is not None:
        out.append(
            f'<line x1="{lx}" y1="{ly - 10}" x2="{lx}" y2="{ly + 2}" stroke="{_TRIP}" '
            'stroke-width="2"/>'
        )
        out.append(_t(lx + 6, ly, "trip", cls="legend"))
        lx += 50
    if data.outflow_stopped_at:
        out.append(
            f'<line x1="{lx}" y1="{ly - 10}" x2="{lx}" y2="{ly + 2}" stroke="{_STOP}" '
            'stroke-width="2"/>'
        )
        out.append(_t(lx + 6, ly, "outflow stopped", cls="legend"))
    # y grid and labels
    v = 0.0
    while v <= y_max + 1e-9:
        y = y_of(v)
        out.append(
            f'<line class="grid" x1="{_LEFT}" y1="{y:.1f}" x2="{_LEFT + pw}" y2="{y:.1f}" '
            f'stroke="{"#888888" if v == 0 else "#e3e3e3"}" stroke-width="1"/>'
        )
        out.append(_t(_LEFT - 6, y + 4, _fmt_num(v), cls="ylabel", anchor="end"))
        v += step
    out.append(
        _t(
            16,
            _TOP + ph / 2,
            f"matches per {bucket_seconds} s",
            cls="axis-title",
            anchor="middle",
            transform=f"rotate(-90 16 {_TOP + ph / 2:.1f})",
        )
    )
    # bars
    show_counts = bw >= 14
    for i, c in enumerate(chart.counts):
        t0 = chart.start_us + i * chart.bucket_us
        x = _LEFT + i * bw
        h = c / y_max * ph
        gap = 1.0 if bw > 3 else 0.0
        out.append(
            f'<rect class="bar" x="{x + gap:.2f}" y="{base_y - h:.2f}" '
            f'width="{max(bw - 2 * gap, 0.5):.2f}" height="{h:.2f}" fill="{_BAR}" '
            f'data-start="{_xml_escape(hms(t0))}" data-count="{c}">'
            f"<title>{hms(t0)}-{hms(t0 + chart.bucket_us)}: {c}</title></rect>"
        )
        if show_counts and c:
            out.append(_t(x + bw / 2, base_y - h - 3, str(c), cls="count", anchor="middle",
                          font_size="9", fill="#333333"))  # fmt: skip
    # x ticks: a label every k buckets, k a round number of seconds, >= ~80 px apart
    k = next(
        (m for m in (1, 2, 3, 6, 12, 30, 60, 180, 360) if m * bw >= 80),
        max(1, math.ceil(80 / bw)),
    )
    fmt = "%H:%M:%S" if k * bucket_seconds % 60 else "%H:%M"
    for i in range(0, n + 1):
        t0 = chart.start_us + i * chart.bucket_us
        if (t0 // chart.bucket_us) % k:
            continue
        x = _LEFT + i * bw
        out.append(
            f'<line class="tick" x1="{x:.1f}" y1="{base_y}" x2="{x:.1f}" y2="{base_y + 5}" '
            'stroke="#888888"/>'
        )
        out.append(_t(x, base_y + 18, hms(t0, fmt), cls="xlabel", anchor="middle"))
    out.append(
        _t(
            _LEFT + pw / 2,
            SVG_H - 14,
            f"log time ({data.tz})",
            cls="axis-title",
            anchor="middle",
        )
    )
    # threshold: the rule's rate at this bucket's scale
    if rate is not None:
        y = y_of(rate)
        out.append(
            f'<line class="threshold" x1="{_LEFT}" y1="{y:.1f}" x2="{_LEFT + pw}" y2="{y:.1f}" '
            f'stroke="{_THRESH}" stroke-width="2" stroke-dasharray="6,4"/>'
        )
        # labelled in the right margin, where no bar is
        for dy, text in ((-19, "trip rate"), (-6, f"{_fmt_num(rate)} / {bucket_seconds} s")):
            out.append(
                _t(_LEFT + pw + 6, y + dy, text, cls="threshold-label", fill=_THRESH,
                   font_weight="bold", font_size="11")
            )  # fmt: skip
    # marks: the trip and the stop
    marks: list[tuple[str, str, int, str]] = []
    if data.trip is not None:
        t = iso_to_us(data.trip.time)
        marks.append(
            ("trip", _TRIP, t, f"TRIPPED {hms(t)} ({data.trip.count} in {data.window_seconds:g} s)")
        )
    if data.outflow_stopped_at:
        t = iso_to_us(data.outflow_stopped_at)
        marks.append(("stop", _STOP, t, f"outflow stopped {hms(t)}"))
    labels: list[str] = []
    for j, (cls, colour, t, label) in enumerate(marks):
        x = min(max(x_of(t), _LEFT), _LEFT + pw)
        out.append(
            f'<line class="{cls}" x1="{x:.1f}" y1="{_TOP - 8}" x2="{x:.1f}" y2="{base_y}" '
            f'stroke="{colour}" stroke-width="2"/>'
        )
        # the label on a white box (drawn after every line, so no line crosses it)
        right = x > _LEFT + pw * 0.6
        y = _TOP + 6 + 18 * j
        width = len(label) * 7.4 + 8  # bold 12 px DejaVu Sans: about 7.4 px a character
        box_x = x - 1 - width if right else x + 1
        labels.append(
            f'<rect class="label-box" x="{box_x:.1f}" y="{y - 13}" width="{width:.1f}" '
            'height="17" fill="#ffffff" fill-opacity="0.9"/>'
        )
        labels.append(
            _t(
                x + (-5 if right else 5),
                y,
                label,
                cls=f"{cls}-label",
                anchor="end" if right else "start",
                fill=colour,
                font_weight="bold",
            )
        )
    out += labels
    if not data.matches:
        out.append(_t(_LEFT + pw / 2, _TOP + ph / 2, "no matching lines", cls="empty",
                      anchor="middle"))  # fmt: skip
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------- writing


def render_evidence(data: IncidentData) -> str:
    """``evidence.log``: the matching lines, verbatim, in order."""
    return "".join(f"{m.text}\n" for m in data.matches)


def write_incident(folder: Path, data: IncidentData) -> list[Path]:
    """Write the incident folder (mode 0700; files 0600), each file atomically.

    Returns the paths written: report.md, report.json, timeline.svg, evidence.log.
    Writing again replaces them (a later, fuller picture of the same incident).
    """
    ensure_state_dir(folder)
    os.chmod(folder, DIR_MODE)
    md, js, svg, ev = (folder / name for name in FILES)
    atomic_write_bytes(ev, render_evidence(data).encode())
    atomic_write_bytes(svg, render_svg(data).encode())
    atomic_write_json(js, render_json(data))
    atomic_write_bytes(md, render_markdown(data).encode())
    return [md, js, svg, ev]


def load_incident(folder: Path) -> IncidentData:
    """An incident folder's ``report.json`` back as data. ValueError/OSError if unusable."""
    path = folder / "report.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from exc
    try:
        return json_to_data(raw)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def list_incidents(incidents_dir: Path) -> list[tuple[Path, IncidentData | None, str]]:
    """Every folder under ``incidents_dir``, newest first: ``(folder, data or None, error)``.

    A folder without a readable report (e.g. only the ``latch.json`` that
    ``rearm`` archives) is listed with ``None`` and the reason.
    """
    if not incidents_dir.is_dir():
        return []
    out: list[tuple[Path, IncidentData | None, str]] = []
    for folder in sorted((p for p in incidents_dir.iterdir() if p.is_dir()), reverse=True):
        try:
            out.append((folder, load_incident(folder), ""))
        except FileNotFoundError:
            out.append((folder, None, "no report.json"))
        except (OSError, ValueError) as exc:
            out.append((folder, None, str(exc)))
    return out
