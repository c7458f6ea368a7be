"""``report.json``: an :class:`~watcher.reports.model.IncidentReport` as JSON, and back. Pure.

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
                       ``"?"`` unknown; for a bounce notice the original message's);
                       ``origin`` (only for rules that count by origin): who submitted it
``by_domain``          ``[[domain, count], ...]`` over all matches, largest first
``by_sender``          ``[[sender, count], ...]`` likewise
``by_sender_domain``   derived (ignored when read back): ``by_sender`` summed per domain
``by_origin``          ``[[origin, count], ...]`` for rules that count by origin (SASL
                       user, pickup uid, client; ``[]`` otherwise, and in older reports)
``actions``            the latch's outcomes: ``[{kind, ok, summary, at, details}]``
``held``               queue IDs put on hold
``config_directory``   the Postfix instance's ``config_directory``
``outflow_stopped_at`` when ``contain-postfix`` or ``freeze-postfix`` first succeeded (host
                       clock, UTC), or ``null``
``escaped``            derived (ignored when read back): ``{basis, stop, count,
                       by_domain}``: matches logged before the outflow stopped.
                       ``basis``: ``freeze`` (live; ``stop`` = ``outflow_stopped_at``),
                       ``trip-line`` (replay: a live run would have stopped there),
                       ``not-stopped`` (live, never contained nor frozen: every match counts)
``other_rules``        every other rule: ``[{name, event, description, matches,
                       before_stop, first, tripped}]`` (``first``/``tripped``: log times
                       or ``null``; ``before_stop`` as in ``escaped``)
``log_lines_lost``     lines the syslog daemon/journald reported dropping: if not 0, the
                       counts are lower bounds
=====================  ==================================================================
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from watcher.core.incident import Incident, LineRef
from watcher.core.latch import ActionRecord
from watcher.core.pipeline import Evidence, Where
from watcher.core.times import from_iso, iso
from watcher.reports.model import (
    IncidentReport,
    OtherRule,
    by_sender_domain,
    escaped_before_stop,
    ranked,
    stop_point,
    zone,
)

SCHEMA = 1


def _ref_json(r: LineRef | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {"time": r.time, "source": r.source, "line": r.line, "text": r.text, "count": r.count}


def to_json(report: IncidentReport) -> dict[str, Any]:
    """``report.json`` (schema above)."""
    tz = zone(report)
    inc = report.incident
    basis, stop = stop_point(report)
    escaped = escaped_before_stop(report)
    return {
        "schema": SCHEMA,
        "id": inc.id,
        "host": inc.host,
        "mode": report.mode,
        "tz": report.tz,
        "rule": inc.rule,
        "description": inc.description,
        "event": report.event,
        "window_seconds": inc.window_seconds,
        "threshold": inc.threshold,
        "rule_actions": list(report.rule_actions),
        "trip": _ref_json(inc.trip),
        "first_match": _ref_json(inc.first_match),
        **({"fleet": [list(d) for d in inc.fleet]} if inc.fleet else {}),  # hosts' shares
        "matches_total": report.matches_total,
        "matches": [
            {
                "time": iso(m.where.time, tz),
                "source": m.where.source,
                "line": m.where.lineno,
                "text": m.where.text,
                "domain": m.domain,
                "sender": m.sender,
                "qid": m.qid,
                **({"origin": m.origin} if m.origin else {}),
            }
            for m in report.matches
        ],
        "by_domain": [[k, n] for k, n in report.by_domain],
        "by_sender": [[k, n] for k, n in report.by_sender],
        "by_sender_domain": [[k, n] for k, n in by_sender_domain(report)],
        "by_origin": [[k, n] for k, n in report.by_origin],
        "actions": [
            {"kind": a.kind, "ok": a.ok, "summary": a.summary, "at": a.at, "details": a.details}
            for a in report.actions
        ],
        "held": list(report.held),
        "config_directory": report.config_directory,
        "outflow_stopped_at": report.outflow_stopped_at,
        "escaped": {
            "basis": basis,
            "stop": None if stop is None else iso(stop, tz),
            "count": len(escaped),
            "by_domain": [[k, n] for k, n in ranked(Counter(m.domain for m in escaped))],
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
            for o in report.other_rules
        ],
        "log_lines_lost": report.log_lines_lost,
    }


def _ref_from(d: Any) -> LineRef | None:
    if d is None:
        return None
    return LineRef(
        str(d["time"]), str(d["source"]), int(d["line"]), str(d["text"]), int(d["count"])
    )


def _pairs(rows: Any) -> tuple[tuple[str, int], ...]:
    return tuple((str(k), int(n)) for k, n in rows)


def _evidence(m: Mapping[str, Any]) -> Evidence:
    where = Where(str(m["source"]), int(m["line"]), str(m["text"]), from_iso(str(m["time"])))
    return Evidence(
        where, str(m["qid"]), str(m["domain"]), str(m["sender"]), str(m.get("origin", ""))
    )


def from_json(d: Mapping[str, Any]) -> IncidentReport:
    """:func:`to_json`'s output back to a report (derived keys ignored).

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
        by_domain = _pairs(d["by_domain"])
        return IncidentReport(
            incident=Incident(
                id=str(d["id"]),
                rule=str(d["rule"]),
                description=str(d["description"]),
                window_seconds=float(d["window_seconds"]),
                threshold=int(d["threshold"]),
                trip=_ref_from(d["trip"]),
                first_match=_ref_from(d["first_match"]),
                top_domains=by_domain[:10],
                host=str(d["host"]),
                fleet=_pairs(d.get("fleet", [])),
            ),
            matches=tuple(_evidence(m) for m in d["matches"]),
            matches_total=int(d["matches_total"]),
            by_domain=by_domain,
            by_sender=_pairs(d["by_sender"]),
            by_origin=_pairs(d.get("by_origin", [])),
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
