"""Making an :class:`~watcher.reports.model.IncidentReport` from what a pipeline saw,
or from a latch alone. Pure: the pipeline and the latch are passed in."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import tzinfo

from watcher.core.incident import Incident, LineRef, incident_id
from watcher.core.latch import ActionRecord, Latch
from watcher.core.pipeline import Pipeline, Where
from watcher.core.rules import ACTION_ORDER
from watcher.core.times import iso
from watcher.reports.model import IncidentReport, Mode, OtherRule, before_stop, ranked, zone_name

MAX_MATCHES = 5000
STOPS = ("contain-offender", "contain-postfix", "freeze-postfix")  # each stops the outflow


def tripping_rule(pipeline: Pipeline) -> str | None:
    """The rule whose trip tripped the switch, if any."""
    trip = pipeline.switch_tripped
    if trip is None:
        return None
    return next((n for n, s in pipeline.summaries.items() if s.tripped is trip), None)


def _ref(w: Where | None, tz: tzinfo, count: int) -> LineRef | None:
    if w is None:
        return None
    return LineRef(iso(w.time, tz), w.source, w.lineno, w.text, count)


def host_of(line: str) -> str:
    """The syslog host field of a classic or RFC 3339 line ("" if not found)."""
    parts = line.split(None, 5)
    if parts and parts[0][:1].isdigit() and len(parts) > 1:
        return parts[1]  # "2026-11-28T02:50:43.123456+00:00 host prog[pid]: ..."
    return parts[3] if len(parts) > 4 and ":" in parts[2] else ""


def _since(w: Where, since_us: int | None) -> bool:
    return since_us is None or w.time >= since_us


def _from_latch(latch: Latch) -> tuple[tuple[ActionRecord, ...], tuple[str, ...], str | None]:
    actions = tuple(latch.actions)
    held = tuple(sorted(set(latch.held)))
    stopped = next((a.at for a in actions if a.kind in STOPS and a.ok and a.at), None)
    return actions, held, stopped


def from_pipeline(
    pipeline: Pipeline,
    rule: str,
    tz: tzinfo,
    *,
    max_matches: int = MAX_MATCHES,
    host: str | None = None,
    config_directory: str = "/etc/postfix",
    latch: Latch | None = None,
    since_us: int | None = None,
) -> IncidentReport:
    """The report of ``rule`` from what ``pipeline`` saw.

    Without ``latch`` it is a replay: nothing was done, and a live run would have
    stopped the outflow at the trip line. With ``latch`` (after the trip's actions
    ran) it is the live incident: its id, host, outcomes, held queue IDs and the
    time the outflow stopped come from there.

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
    matches = tuple(kept[:max_matches])
    if since_us is None:
        first_where, total = s.first, s.matches
        by_domain, by_sender = ranked(s.by_domain), ranked(s.by_sender)
        by_origin = ranked(s.by_origin)
    else:
        first_where, total = (kept[0].where if kept else None), len(kept)
        by_domain = ranked(Counter(m.domain for m in kept))
        by_sender = ranked(Counter(m.sender for m in kept))
        by_origin = ranked(Counter(m.origin for m in kept if m.origin))
    tripped = s.tripped if s.tripped is None or _since(s.tripped, since_us) else None
    anchor = tripped or first_where
    actions: tuple[ActionRecord, ...] = ()
    held: tuple[str, ...] = ()
    stopped: str | None = None
    mode: Mode = "replay"
    the_id = incident_id(anchor.time, rule) if anchor is not None else f"replay-{rule}"
    the_host = host if host is not None else (host_of(anchor.text) if anchor else "")
    if latch is not None:
        mode = "live"
        actions, held, stopped = _from_latch(latch)
        if latch.incident is not None:
            the_id = latch.incident.id or the_id
            the_host = host if host is not None else (latch.incident.host or the_host)
    report = IncidentReport(
        incident=Incident(
            id=the_id,
            rule=rule,
            description=r.description,
            window_seconds=float(r.window.seconds),
            threshold=r.trip_at or 0,
            trip=_ref(tripped, tz, s.count_at_trip),
            first_match=_ref(first_where, tz, 1),
            top_domains=by_domain[:10],
            host=the_host,
            fleet=pipeline.fleet_shares.get(rule, ()),
        ),
        matches=matches,
        matches_total=total,
        by_domain=by_domain,
        by_sender=by_sender,
        by_origin=by_origin,
        actions=actions,
        held=held,
        config_directory=config_directory,
        outflow_stopped_at=stopped,
        tz=zone_name(tz),
        mode=mode,
        event=r.match.event,
        rule_actions=tuple(k for k in ACTION_ORDER if k in r.actions),
        log_lines_lost=pipeline.loss.lost,
    )
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
                before_stop=sum(1 for w in seen if before_stop(report, w.time, w.source, w.lineno)),
                first=iso(o_first.time, tz) if o_first is not None else None,
                tripped=iso(o_tripped.time, tz) if o_tripped is not None else None,
            )
        )
    return replace(report, other_rules=tuple(others))


def from_latch(
    latch: Latch, tz: tzinfo, *, config_directory: str = "/etc/postfix"
) -> IncidentReport:
    """A report from the latch alone: for a trip by hand (``stormwatch trip``), which
    no rule counted, and for an archived latch that has no report."""
    if latch.incident is None:
        raise ValueError("the latch holds no incident")
    inc = latch.incident
    trip = inc.trip
    if trip is not None and latch.trips:
        first = latch.trips[0]
        trip = replace(trip, source=first.source, line=first.line)
    actions, held, stopped = _from_latch(latch)
    return IncidentReport(
        incident=replace(inc, trip=trip, first_match=None),
        matches_total=inc.count,
        by_domain=inc.top_domains,
        actions=actions,
        held=held,
        config_directory=config_directory,
        outflow_stopped_at=stopped,
        tz=zone_name(tz),
        mode="live",
        rule_actions=tuple(a.kind for a in actions),
    )
