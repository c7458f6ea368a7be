"""The replay verdict: one JSON-able dict, and its rendering for a terminal.

The dict is the ``--json`` output (schema in the README, version in
``"schema"``); the text report is made from the same dict, so the two never
disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from watcher import __version__
from watcher.core.pipeline import Pipeline, RuleSummary, Where
from watcher.core.plan import PlannedAction
from watcher.core.times import iso_or_none

SCHEMA = 1
TOP_DOMAINS = 20
# replay is "blind" when at least this share of the Postfix-looking lines (unreadable ones
# and events) had a header it could not read
BLIND_SHARE = 0.05


@dataclass(frozen=True, slots=True)
class InputInfo:
    name: str
    lines: int
    long_lines_cut: int = 0  # lines over 64 KiB, cut as the live source cuts them
    header_format: str | None = None  # the first format found (None: no Postfix line)
    format_changes: tuple[tuple[int, str], ...] = ()  # (line, new format), the first 20


def _where(w: Where | None, tz: tzinfo) -> dict[str, Any] | None:
    if w is None:
        return None
    return {"time": iso_or_none(w.time, tz), "source": w.source, "line": w.lineno, "text": w.text}


def _rule(s: RuleSummary, tz: tzinfo) -> dict[str, Any]:
    r = s.rule
    return {
        "name": r.name,
        "description": r.description,
        "event": r.match.event,
        "window_seconds": r.window.seconds,
        "group_by": r.window.group_by,
        "warn_at": r.warn_at,
        "trip_at": r.trip_at,
        "matches": s.matches,
        "first": _where(s.first, tz),
        "last": _where(s.last, tz),
        "warned": _where(s.warned, tz),
        "tripped": _where(s.tripped, tz),
        "count_at_trip": s.count_at_trip if s.tripped else None,
        "after_trip": s.after_switch,
        "by_domain": [[d, n] for d, n in sorted(s.by_domain.items(), key=lambda x: (-x[1], x[0]))],
        "by_sender": [[d, n] for d, n in sorted(s.by_sender.items(), key=lambda x: (-x[1], x[0]))],
        "by_origin": [[d, n] for d, n in sorted(s.by_origin.items(), key=lambda x: (-x[1], x[0]))],
        "transports": dict(sorted(s.transports.items())),
    }


def build(
    pipeline: Pipeline,
    inputs: Sequence[InputInfo],
    planned: Sequence[PlannedAction],
    tz: tzinfo,
) -> dict[str, Any]:
    """The verdict of a replay, as plain data."""
    ps = pipeline.parser.stats
    cs = pipeline.correlator.stats
    trip = pipeline.switch_tripped
    trip_rule = next(
        (s.rule.name for s in pipeline.summaries.values() if s.tripped is trip and trip), None
    )
    return {
        "schema": SCHEMA,
        "stormwatch": __version__,
        "tripped": trip is not None,
        "trip": None if trip is None else {"rule": trip_rule, **(_where(trip, tz) or {})},
        "inputs": [
            {
                "name": i.name,
                "lines": i.lines,
                "long_lines_cut": i.long_lines_cut,
                "format": i.header_format,
                "format_changes": [{"line": n, "format": f} for n, f in i.format_changes],
            }
            for i in inputs
        ],
        "lines": ps.lines,
        "events": pipeline.events,
        "unparsed": ps.unparsed,
        "unparsed_samples": list(ps.unparsed_samples),
        "unreadable": ps.unreadable,
        "unreadable_samples": [{"reason": r, "text": t} for r, t in ps.unreadable_samples],
        "blind": is_blind(ps.unreadable, pipeline.events),
        "span": {
            "first": iso_or_none(pipeline.first_time, tz),
            "last": iso_or_none(pipeline.last_time, tz),
        },
        "log_loss": {
            "reports": pipeline.loss.events,
            "lines_lost": pipeline.loss.lost,
            "first": _where(pipeline.loss.first, tz),
        },
        "time_steps": {
            "back": pipeline.time_steps.back,
            "largest_seconds": pipeline.time_steps.largest / 1_000_000,
            "first": _where(pipeline.time_steps.first, tz),
        },
        "correlation": {
            "open_peak": cs.open_peak,
            "evicted": cs.evicted,
            "expired": cs.expired,
            "unknown_sender": cs.unknown_sender,
        },
        "rules": [_rule(s, tz) for s in pipeline.summaries.values()],
        "plan": [
            {
                "kind": p.action.kind,
                "severity": p.action.severity,
                "rule": p.action.rule,
                "time": iso_or_none(p.action.time, tz),
                "source": p.where.source,
                "line": p.where.lineno,
                "count": p.action.count,
                "threshold": p.action.threshold,
                "steps": list(p.steps),
            }
            for p in planned
        ],
    }


def is_blind(unreadable: int, events: int) -> bool:
    """Whether so many Postfix-looking lines were unreadable that "no trip" means nothing."""
    return unreadable > 0 and unreadable >= BLIND_SHARE * (unreadable + events)


def _short_time(value: str | None) -> str:
    """'2011-10-16T17:52:52+09:00' -> '2011-10-16 17:52:52'."""
    if not value:
        return "-"
    return value[:19].replace("T", " ")


def _table(add: Callable[[str], None], label: str, rows: list[list[Any]]) -> None:
    if not rows:
        return
    add(f"    {label}:")
    width = max(len(str(k)) for k, _ in rows[:TOP_DOMAINS])
    for k, n in rows[:TOP_DOMAINS]:
        add(f"      {k:<{width}}  {n:>7,}")
    if len(rows) > TOP_DOMAINS:
        add(f"      ... and {len(rows) - TOP_DOMAINS} more")


def _at(w: dict[str, Any]) -> str:
    return f"{_short_time(w['time'])}  {w['source']}:{w['line']}"


def render_text(v: dict[str, Any]) -> str:
    """The verdict for a person at a terminal."""
    out: list[str] = []
    add = out.append
    if v["unreadable"]:
        share = v["unreadable"] / max(1, v["unreadable"] + v["events"])
        head = "BLIND" if v["blind"] else "WARNING"
        add(
            f"{head}: {v['unreadable']:,} Postfix lines ({share:.0%}) had a header stormwatch "
            "cannot read: they were not counted."
        )
        for sample in v["unreadable_samples"][:3]:
            add(f"    {sample['reason']}: {sample['text']}")
    span = v["span"]
    add(
        f"Read {v['lines']:,} lines from {len(v['inputs'])} input(s), "
        f"{_short_time(span['first'])} to {_short_time(span['last'])}; "
        f"{v['events']:,} Postfix events."
    )
    for i in v["inputs"]:
        changes = i.get("format_changes") or []
        later = "; then " + ", ".join(f"{c['format']} at line {c['line']}" for c in changes[1:4])
        add(
            f"Header format of {i['name']}: {i.get('format') or 'no Postfix line found'}"
            + (later if len(changes) > 1 else "")
        )
    cut = sum(i.get("long_lines_cut", 0) for i in v["inputs"])
    if cut:
        add(f"Lines over 64 KiB, cut to their first 64 KiB: {cut:,}")
    if v["unparsed"]:
        add(f"Postfix lines that could not be parsed (skipped): {v['unparsed']:,}")
        for sample in v["unparsed_samples"][:3]:
            add(f"    {sample}")
    loss = v["log_loss"]
    if loss["reports"]:
        first = loss["first"]
        add(
            f"WARNING: the log reports {loss['lines_lost']:,} lines dropped by rate limiting "
            f"({loss['reports']} reports, first at {first['source']}:{first['line']}): "
            "the watcher was partly blind, counts below are lower bounds."
        )
    steps = v["time_steps"]
    if steps["back"]:
        first = steps["first"]
        add(
            f"Log time went back beyond the shortest rule window {steps['back']:,} time(s), "
            f"by up to {steps['largest_seconds']:,.0f} s (first at {first['source']}:"
            f"{first['line']}): lines dated ahead; the windows were re-based."
        )
    corr = v["correlation"]
    if corr["evicted"]:
        add(f"Queue IDs evicted to bound memory: {corr['evicted']:,} (raise correlate.max_open)")
    add("")
    trip = v["trip"]
    if trip is None:
        add("VERDICT: no rule tripped.")
    else:
        add(
            f"VERDICT: TRIPPED by rule '{trip['rule']}' at {_short_time(trip['time'])}, "
            f"{trip['source']}:{trip['line']}"
        )
        add(f"    {trip['text']}")
    for r in v["rules"]:
        add("")
        thresholds = ", ".join(f"{k} {r[k]}" for k in ("warn_at", "trip_at") if r[k] is not None)
        window = f"{thresholds} in {r['window_seconds']:g} s"
        add(f"Rule {r['name']} ({window}): {r['matches']:,} matched")
        for key, label in (("first", "first match"), ("last", "last match"), ("warned", "warned")):
            if r[key]:
                add(f"    {label:<13} {_at(r[key])}")
        if r["tripped"]:
            add(f"    {'TRIPPED':<13} {_at(r['tripped'])} ({r['count_at_trip']} in window)")
        if trip is not None and r["matches"]:
            add(
                f"    after the switch tripped: {r['after_trip']:,} "
                "(what stopping there would have kept in)"
            )
        if r["event"] == "forwarding-loop":
            _table(add, "looping mail from (envelope sender)", r["by_sender"])
        else:
            label = "bounces to domain" if r["event"] == "bounce-notice" else "destination domain"
            _table(add, label, r["by_domain"])
        _table(add, "origin (SASL user, uid or client)", r["by_origin"])
    if v["plan"]:
        add("")
        add("PLAN (dry run: nothing was done):")
        for p in v["plan"]:
            add(
                f"  [{p['severity']}] {p['kind']} ({p['rule']}, "
                f"{_short_time(p['time'])}, {p['source']}:{p['line']})"
            )
            for step in p["steps"]:
                add(f"      - {step}")
    return "\n".join(out) + "\n"
