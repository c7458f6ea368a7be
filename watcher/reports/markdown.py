"""``report.md``: an incident report for a human. Pure: text in, text out.

Log text is shown as it was logged: every Markdown special character is
escaped (:func:`md_escape`), control and bidi characters become visible
escapes, and code blocks use a fence longer than any backtick run inside.
"""

from __future__ import annotations

import re
import shlex
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any

from watcher.core.fleet import shares_text
from watcher.core.incident import MANUAL, LineRef
from watcher.core.parse import QID_RE
from watcher.core.text import visible
from watcher.core.times import from_iso, iso
from watcher.reports.model import (
    IncidentReport,
    by_sender_domain,
    escaped_before_stop,
    ranked,
    sender_label,
    stop_point,
    utc_offset,
    zone,
)

TABLE_ROWS = 25

# Characters that make Markdown (CommonMark/GFM) inline syntax: emphasis, code,
# links, autolinks, raw HTML, entities, tables, strikethrough. Each may be
# backslash-escaped (CommonMark: any ASCII punctuation).
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&!#])")


def md_escape(text: str) -> str:
    """Log text as inline Markdown that renders as the same characters, nothing more."""
    return _MD_SPECIAL.sub(r"\\\1", visible(text))


def _code_block(lines: Iterable[str]) -> list[str]:
    """A fenced block that no line can close: the fence is longer than any backtick run."""
    body = [visible(line) for line in lines]
    longest = max((len(run) for line in body for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, *body, fence]


def _local(value: str | None, tz: tzinfo, *, seconds: bool = True) -> str:
    """An ISO time as 'YYYY-MM-DD HH:MM:SS' in ``tz``."""
    if not value:
        return "-"
    dt = datetime.fromisoformat(value).astimezone(tz)
    return f"{dt:%Y-%m-%d %H:%M:%S}" + (f".{dt.microsecond // 1000:03d}" if not seconds else "")


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


def summary_lines(data: IncidentReport) -> list[str]:
    """The top of the report as plain sentences (for the page too)."""
    inc = data.incident
    tz = zone(data)
    out: list[str] = []
    if inc.rule == MANUAL and inc.trip is not None:
        out.append(f"Tripped by hand at {_local(inc.trip.time, tz)}: {inc.description}")
    elif inc.trip is not None:
        out.append(
            f"Rule {inc.rule} tripped at {_local(inc.trip.time, tz)} ({data.tz}): "
            f"{inc.trip.count} in {inc.window_seconds:g} s (trip_at {inc.threshold}), "
            f"{inc.trip.source} line {inc.trip.line}."
        )
    else:
        out.append(f"Rule {inc.rule} did not trip.")
    if inc.fleet:
        out.append(f"Tripped on the fleet's shared window: {shares_text(inc.fleet)}.")
    span = ""
    if data.matches:
        span = (
            f", {_local(iso(data.matches[0].where.time, tz), tz)} to "
            f"{_local(iso(data.matches[-1].where.time, tz), tz)}"
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
        out += containment_lines(data)
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


def containment_lines(data: IncidentReport) -> list[str]:
    """What the ladder contained, what still flows, and each escalation."""
    out: list[str] = []
    for a in data.actions:
        if not a.ok:
            continue
        if a.kind == "contain-postfix":
            out.append(
                "Contained: the storm's mail (null-sender mail, held in the queue"
                + (f"; new mail for {', '.join(map(str, a.details.get('held_recipients') or []))}"
                   " held at smtpd" if a.details.get("held_recipients") else "")
                + "); outbound mail from other senders kept flowing."
            )  # fmt: skip
        elif a.kind == "contain-offender":
            d = a.details
            held = d.get("held") or []
            domains = ", ".join(map(str, d.get("domains") or [])) or "?"
            out.append(
                f"Contained: offender {d.get('offender', '?')} only"
                f" ({d.get('count', '?')} counted; to {domains}); {len(held)} of its queued"
                " message(s) held at the trip; everyone else's mail kept flowing."
                " 'stormwatch rearm' lifts the block; 'stormwatch rearm --release-held' also"
                " releases its held mail."
            )
        elif a.kind == "freeze-postfix":
            transports = (a.details.get("applied") or {}).get("defer_transports", "?")
            out.append(
                f"Frozen: outbound transports {transports} deferred: all outbound mail on them "
                "waits until re-armed."
            )
    return out


def _timeline(data: IncidentReport, tz: tzinfo) -> list[str]:
    inc = data.incident
    rows: list[tuple[int, int, str, str]] = []  # (time, order, when, what)

    def log_row(ref: LineRef | None, order: int, what: str) -> None:
        if ref is not None:
            where = md_escape(f"{ref.source}:{ref.line}")
            rows.append((from_iso(ref.time), order, _local(ref.time, tz), f"{what} ({where})"))

    log_row(inc.first_match, 0, "first matching line")
    if inc.trip is not None:
        log_row(
            inc.trip,
            1,
            "**tripped by hand**"
            if inc.rule == MANUAL
            else f"**threshold crossed**: {inc.trip.count} in {inc.window_seconds:g} s "
            f"(trip_at {inc.threshold})",
        )
    for i, a in enumerate(data.actions):
        if not a.at:
            continue
        state = "ok" if a.ok else "**FAILED**"
        rows.append(
            (
                from_iso(a.at),
                10 + i,
                _local(a.at, tz, seconds=False) + " (host clock)",
                f"{md_escape(a.kind)}: {state}: {md_escape(a.summary)}",
            )
        )
    if data.outflow_stopped_at:
        rows.append(
            (
                from_iso(data.outflow_stopped_at),
                99,
                _local(data.outflow_stopped_at, tz, seconds=False) + " (host clock)",
                "**outflow stopped**",
            )
        )
    elif data.mode == "replay" and inc.trip is not None:
        t = from_iso(inc.trip.time)
        rows.append((t, 98, _local(inc.trip.time, tz), "outflow would have stopped here (replay)"))
    if data.matches:
        last = data.matches[-1]
        rows.append(
            (
                last.where.time,
                200,
                _local(iso(last.where.time, tz), tz),
                "last matching line recorded "
                f"({md_escape(f'{last.where.source}:{last.where.lineno}')})",
            )
        )
    rows.sort(key=lambda r: (r[0], r[1]))
    return ["| time | what |", "| --- | --- |", *(f"| {w} | {what} |" for _, _, w, what in rows)]


def _commands(data: IncidentReport) -> list[str]:
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


def render_markdown(data: IncidentReport) -> str:
    """``report.md``: the report for a human."""
    inc = data.incident
    tz = zone(data)
    ref_time = datetime.fromisoformat(inc.trip.time) if inc.trip else datetime.now(UTC)
    out = [
        f"# Incident {md_escape(inc.id)}" + (f" on {md_escape(inc.host)}" if inc.host else ""),
        "",
        f"Rule **{md_escape(inc.rule)}**"
        + (f" ({md_escape(inc.description)})" if inc.description else "")
        + f": trips at {inc.threshold} in {inc.window_seconds:g} s."
        + (" **Replay of a finished log: nothing was done.**" if data.mode == "replay" else ""),
        f"Log times are in {md_escape(data.tz)} ({utc_offset(tz, ref_time)}); "
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
    if inc.trip is not None:
        out += [
            "The line that tripped the switch:",
            "",
            *_code_block([inc.trip.text]),
            "",
        ]
    if data.mode == "replay" and data.rule_actions:
        out += [
            "A live run would have taken these actions, in this order: "
            + ", ".join(md_escape(k) for k in data.rule_actions)
            + ".",
            "",
        ]
    domain_col, sender_col = _COLUMNS.get(data.event, _COLUMNS["delivery"])
    if data.by_origin:  # a flood rule: who sent it comes first
        out += _table("Per origin (SASL user, uid or client)", "origin", data.by_origin, str)
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
        out += _table("Per sender", sender_col, data.by_sender, sender_label)
    escaped = escaped_before_stop(data)
    basis, _ = stop_point(data)
    out += ["## What escaped before the stop", ""]
    if basis == "not-stopped":
        out.append(f"The outflow was **not** stopped: {_what(data.event, len(escaped))} in all.")
    else:
        until = (
            f"{_local(data.outflow_stopped_at, tz, seconds=False)} (host clock)"
            if basis == "freeze"
            else f"the trip line, {_local(inc.trip.time if inc.trip else None, tz)} (replay)"
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
            ranked(Counter(m.domain for m in escaped)),
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
