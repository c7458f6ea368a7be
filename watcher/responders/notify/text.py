"""What pages say: trip page, early warning, reminder, all-clear, log-loss notice.

Pure: each ``render_*`` returns ``(title, body)`` as plain text. A log line's
addresses appear verbatim; only control and bidi characters are shown as
escapes, by :func:`watcher.core.text.visible`, and a line longer than
:data:`MAX_LINE_CHARS` is cut.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta

from watcher.core.fleet import shares_text
from watcher.core.incident import Incident
from watcher.core.text import visible
from watcher.responders.base import Outcome

REARM = (
    "Re-arm once the cause is fixed: stormwatch rearm "
    "(--keep-held keeps the storm's mail on hold, --release-held lets it go)"
)
MAX_LINE_CHARS = 4000
TOP_DOMAINS = 8
PREFIX = "[stormwatch]"


def _line(text: str) -> str:
    if len(text) > MAX_LINE_CHARS:
        more = len(text) - MAX_LINE_CHARS
        return f"{visible(text[:MAX_LINE_CHARS])} ... [{more} more characters]"
    return visible(text)


def _on(host: str) -> str:
    return f" on {visible(host)}" if host else ""


def _duration(seconds: float) -> str:
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    minutes, _ = divmod(s, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _counts(incident: Incident, what: str) -> str:
    return f"{incident.count} in {incident.window_seconds:g} s ({what} {incident.threshold})"


def _domains(incident: Incident) -> list[str]:
    if not incident.top_domains:
        return []
    shown = incident.top_domains[:TOP_DOMAINS]
    lines = ["Top destination domains:"]
    lines += [f"  {visible(domain)}: {n}" for domain, n in shown]
    if len(incident.top_domains) > len(shown):
        lines.append(f"  (+{len(incident.top_domains) - len(shown)} more)")
    return ["", *lines]


def _fleet(incident: Incident) -> list[str]:
    """A count across the fleet: each host's share of it."""
    return [f"Fleet: {visible(shares_text(incident.fleet))}"] if incident.fleet else []


def _outcome_line(o: Outcome) -> str:
    summary = visible(re.sub(r"\s*[\r\n]+\s*", " / ", o.summary.strip()))
    return f"  {'ok    ' if o.ok else 'FAILED'} {visible(o.kind)}: {summary}"


def render_page(incident: Incident, outcomes: Sequence[Outcome]) -> tuple[str, str]:
    """The page sent when the switch trips: what happened, what was done, what failed."""
    failed = [o for o in outcomes if not o.ok]
    title = (
        f"{PREFIX} TRIPPED{_on(incident.host)}: {visible(incident.rule)}, "
        f"{incident.count} in {incident.window_seconds:g} s"
    )
    if failed:
        title += f", {len(failed)} action(s) FAILED"
    body = [
        f"Kill switch TRIPPED{_on(incident.host)} by rule {visible(incident.rule)}.",
    ]
    if incident.description:
        body.append(visible(incident.description))
    body += [
        f"Count: {_counts(incident, 'threshold')}",
        *_fleet(incident),
        f"First match: {visible(incident.first_time)} (log time)",
        f"Trip line:   {visible(incident.trip_time)} (log time)",
        f"Incident: {visible(incident.id)}",
        *_domains(incident),
        "",
        "What the kill switch did:",
    ]
    if outcomes:
        body += [_outcome_line(o) for o in outcomes]
        body.append(
            f"{len(failed)} of {len(outcomes)} action(s) FAILED: see above."
            if failed
            else "Every action succeeded."
        )
    else:
        body.append("  (no action has reported yet)")
    body += ["", "The line that tripped it, verbatim:", _line(incident.trip_line)]
    if incident.report_summary or incident.report_dir:
        body += ["", "Report:"]
        body += [f"  {visible(line)}" for line in incident.report_summary]
        if incident.report_dir:
            body.append(f"  Full report: {visible(incident.report_dir)}/report.md")
    body += ["", REARM]
    return title, "\n".join(body)


def render_warning(incident: Incident) -> tuple[str, str]:
    """An early warning: the count reached the rule's warn level (``incident.threshold``)."""
    title = (
        f"{PREFIX} warning{_on(incident.host)}: {visible(incident.rule)}, "
        f"{incident.count} in {incident.window_seconds:g} s"
    )
    body = [
        f"Rule {visible(incident.rule)} is close to tripping{_on(incident.host)}.",
        "The kill switch has NOT tripped: nothing was stopped.",
    ]
    if incident.description:
        body.append(visible(incident.description))
    body += [
        f"Count: {_counts(incident, 'warns at')}",
        *_fleet(incident),
        f"First match: {visible(incident.first_time)} (log time)",
        f"Latest:      {visible(incident.trip_time)} (log time)",
        *_domains(incident),
        "",
        "The latest matching line, verbatim:",
        _line(incident.trip_line),
        "",
        'To stop everything now: stormwatch trip --reason "..."',
    ]
    return title, "\n".join(body)


def render_reminder(
    incident: Incident, since: timedelta, *, held_count: int | None = None
) -> tuple[str, str]:
    """A reminder while tripped; ``since`` is how long the switch has been tripped."""
    ago = _duration(since.total_seconds())
    title = f"{PREFIX} still TRIPPED{_on(incident.host)}: {visible(incident.rule)}, for {ago}"
    body = [
        f"The kill switch{_on(incident.host)} has been tripped for {ago} "
        f"(rule {visible(incident.rule)}, tripped at {visible(incident.trip_time)} log time).",
        "What it stopped stays stopped until a human re-arms it.",
        f"Count when it tripped: {_counts(incident, 'threshold')}",
        f"Incident: {visible(incident.id)}",
    ]
    if held_count is not None:
        body.append(f"Messages on hold: {held_count}")
    body += ["", REARM]
    return title, "\n".join(body)


def render_all_clear(incident: Incident, released_count: int, held_count: int) -> tuple[str, str]:
    """Sent by ``rearm``: the switch is re-armed and watching again."""
    title = f"{PREFIX} re-armed{_on(incident.host)}: {visible(incident.rule)}"
    body = [
        f"The kill switch{_on(incident.host)} was re-armed and is watching again "
        f"(incident {visible(incident.id)}, rule {visible(incident.rule)}).",
        "What the trip changed has been undone.",
        f"Released from hold back into the queue: {released_count}",
        f"Still on hold: {held_count}",
    ]
    if held_count:
        body += [
            "The messages still on hold are the storm's bounces and looping originals: held",
            "mail never expires. See them with: postqueue -j ; release one with: postsuper -H ID",
        ]
    return title, "\n".join(body)


def render_log_loss(lost: int, first_line: str, *, host: str = "") -> tuple[str, str]:
    """The system logger dropped lines (rsyslog rate limit, journald suppression).

    ``first_line`` is the line that reported the loss, shown verbatim.
    """
    n = str(lost) if lost > 0 else "some"
    title = f"{PREFIX} partly blind{_on(host)}: {n} log line(s) lost"
    body = [
        f"The system logger{_on(host)} dropped {n} log line(s) before stormwatch could read them.",
        "The watcher is partly blind: window counts may be too low, so a storm can trip",
        "late or not at all.",
        "",
        "Reported by:",
        _line(first_line),
        "",
        "Fix: raise rsyslog's rate limits (imuxsock/imjournal ratelimit.burst) or journald's",
        "RateLimitBurst, or let Postfix write its own log (maillog_file) for stormwatch to follow.",
    ]
    return title, "\n".join(body)


def render_blind(
    lines: int,
    source: str,
    since_line: int,
    since: str,
    sample: str,
    reason: str,
    *,
    host: str = "",
) -> tuple[str, str]:
    """A source's Postfix lines are coming in and none has a header stormwatch reads."""
    title = f"{PREFIX} blind{_on(host)}: {lines} lines in an unknown format since {since}"
    body = [
        f"{source} is giving Postfix lines whose header stormwatch cannot read: {lines} in a row",
        f"since line {since_line} (noticed {since}), none of them readable. Nothing from this",
        "source is counted: a storm would not trip the switch.",
        "",
        f"The first ({reason}):",
        _line(sample),
        "",
        "Fix: have the syslog daemon write a format stormwatch reads (classic, RFC 3339,",
        "RFC 5424; see the README), or follow Postfix's own maillog_file or the journal.",
    ]
    return title, "\n".join(body)


def render_metrics_unavailable(problem: str, *, host: str = "") -> tuple[str, str]:
    """The metrics port could not be bound: the switch still works, monitoring is blind."""
    title = f"{PREFIX} metrics unavailable{_on(host)}"
    body = [
        visible(problem),
        "",
        "The kill switch itself is unaffected: the watcher reads the log and acts as before.",
        "Prometheus cannot scrape it, so an alert on stormwatch_tripped or on missing",
        "data will fire. Find the process on that port (ss -ltnp) and stop it, or set",
        "another [metrics] port; the watcher keeps trying to listen.",
    ]
    return title, "\n".join(body)


def render_recovered(incident: Incident, outcome: Outcome, attempt: int) -> tuple[str, str]:
    """An action that had failed worked when it was tried again."""
    title = (
        f"{PREFIX} {visible(outcome.kind)} done{_on(incident.host)} on attempt {attempt}: "
        f"{visible(incident.rule)}"
    )
    body = [
        f"The kill switch{_on(incident.host)} is tripped (incident {visible(incident.id)}, "
        f"rule {visible(incident.rule)}).",
        f"{visible(outcome.kind)} had failed; tried again, it worked (attempt {attempt}):",
        _outcome_line(outcome),
        "",
        REARM,
    ]
    return title, "\n".join(body)


def render_unknown_latch(why: str, *, host: str = "") -> tuple[str, str]:
    """latch.json cannot be read: tripped, state unknown."""
    title = f"{PREFIX} state unknown{_on(host)}: latch.json cannot be read"
    body = [
        f"The kill switch's latch{_on(host)} cannot be read: {_line(why)}",
        "It is treated as tripped with the state unknown: what an earlier trip changed",
        "(Postfix settings, held mail) cannot be told from it. The watcher goes on",
        "watching and acts on new trips; 'stormwatch rearm' refuses until it is given",
        "--force (after it shows what it found). Check 'postconf -n' and the hold queue.",
    ]
    return title, "\n".join(body)


def render_escalated(incident: Incident, outcome: Outcome) -> tuple[str, str]:
    """The ladder's step 2: the storm's mail kept leaving, the transports were frozen."""
    title = f"{PREFIX} ESCALATED{_on(incident.host)}: {visible(incident.rule)}, Postfix frozen"
    body = [
        f"The kill switch{_on(incident.host)} escalated (incident {visible(incident.id)}):",
        "the storm's mail kept leaving after the scoped containment took effect (a route it",
        "does not cover: relay_transport or transport_maps), so the outbound transports that",
        "carried it are frozen now: ALL outbound mail on them waits until re-armed.",
        _outcome_line(outcome),
        "",
        REARM,
    ]
    return title, "\n".join(body)


def render_fleet_down(problem: str, *, host: str = "") -> tuple[str, str]:
    """Redis cannot be reached: this host counts its shared rules alone."""
    title = f"{PREFIX} fleet: Redis unreachable{_on(host)}, counting locally"
    body = [
        f"The fleet's Redis cannot be reached{_on(host)}: {_line(problem)}",
        "This host goes on counting every rule in its own windows and trips on them as",
        "always; what the rest of the fleet sees is not added until Redis is back. Its",
        "matches are kept and shared again then. Other hosts may be blind to this one's",
        "share of a storm spread over the fleet meanwhile.",
    ]
    return title, "\n".join(body)


def render_fleet_up(resent: int, *, host: str = "", down_for: float = 0.0) -> tuple[str, str]:
    """Redis is back: sharing resumed."""
    title = f"{PREFIX} fleet: Redis reachable again{_on(host)}, sharing resumed"
    body = [
        f"The fleet's Redis is reachable again{_on(host)} after {_duration(down_for)}.",
        f"This host sent again the {resent} shared match(es) still within their windows;",
        "the fleet's windows count them once.",
    ]
    return title, "\n".join(body)


def render_fleet_trip(
    tripped: str, rule: str, incident: str, offender: str, *, host: str = ""
) -> tuple[str, str]:
    """Another host of the fleet tripped: this one pages, and acts on its own rules."""
    title = f"{PREFIX} fleet: host {_line(tripped)} has tripped on rule {_line(rule)}"
    body = [
        f"Host {_line(tripped)} of the fleet tripped on rule {_line(rule)}: incident"
        f" {_line(incident)}" + (f", offender {_line(offender)} contained." if offender else "."),
        f'This host{_on(host)} is not tripped by it ([fleet] on_trip = "page"): it goes'
        " on counting its own windows and the fleet's shared ones, and trips on them as"
        " always.",
        "The fleet's hosts, their latch and lag: stormwatch fleet status. Re-arm each"
        " tripped host on that host: stormwatch rearm.",
    ]
    return title, "\n".join(body)
