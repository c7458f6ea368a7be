"""The kill switch: run a trip's actions in a safe order, latch, remind.

The latch (:mod:`watcher.responders.latchstore`) is the truth: a trip is
written there *before* the first action, and each action's outcome right
after it. Order of a trip's actions (:data:`watcher.core.rules.ACTION_ORDER`):
the outflow first (freeze Postfix, then hold what is queued), then the inflow
(fetchmail), then the configured command, and the page last, so that it can
say what was done and what failed. A failing responder is an outcome: the
others still run, and so does the watcher.

Everything the switch touches is passed in: the responders, the page, the
hold sweep, the report writer, the clock. :mod:`watcher.runtime.switch` wires
the real ones.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, timedelta
from typing import Protocol

from watcher.core.decide import Action
from watcher.core.incident import MANUAL, Incident, LineRef, incident_id
from watcher.core.latch import ActionRecord, Latch, TripRecord
from watcher.core.offender import queue_ids_of
from watcher.core.pipeline import Pipeline, Where
from watcher.core.rules import ActionKind
from watcher.core.settings import Settings
from watcher.core.times import iso, wall_us
from watcher.responders.actions import ActionRunner, current_outcomes, wall_iso
from watcher.responders.base import Level, Outcome, Responder
from watcher.responders.latchstore import LatchStore
from watcher.responders.notify.text import (
    render_escalated,
    render_recovered,
    render_unknown_latch,
)
from watcher.state.files import StateError

log = logging.getLogger(__name__)

REPORT_REWRITE_SECONDS = 10.0  # then the lines logged up to the freeze have been read

Page = Callable[[str, str, Level], None]  # (title, body, level)
Reporter = Callable[[Incident, "Where | None", "Pipeline | None", Latch], Incident]


class SwitchMetrics(Protocol):
    """What the switch tells the metrics (:class:`watcher.runtime.metrics.Metrics`)."""

    def record_trip(self, rule: str) -> None: ...

    def record_outcome(self, kind: str, ok: bool) -> None: ...


iso_wall = wall_iso


def outcome_of(record: ActionRecord) -> Outcome:
    return Outcome(record.kind, record.ok, record.summary, dict(record.details))


class KillSwitch:
    """Acts on the pipeline's actions with the responders it is given."""

    def __init__(
        self,
        settings: Settings,
        store: LatchStore,
        responders: Mapping[str, Responder],
        *,
        page: Page | None = None,
        hold_sweep: Callable[[Sequence[str]], list[str]] | None = None,
        offender_sweep: Callable[[Sequence[str]], list[str]] | None = None,
        reminder: Callable[[Incident, timedelta, int], tuple[str, str]] | None = None,
        warning: Callable[[Incident], tuple[str, str]] | None = None,
        reporter: Reporter | None = None,
        wall: Callable[[], float] = time.time,
        hostname: str | None = None,
        sweep_every: float = 5.0,
        keepalive: Callable[[], object] = lambda: None,
        metrics: SwitchMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.responders = dict(responders)
        self._page = page
        self._hold_sweep = hold_sweep
        self._offender_sweep = offender_sweep
        self._reminder = reminder
        self._warning = warning
        self._reporter = reporter
        self._wall = wall
        self.host = hostname if hostname is not None else socket.gethostname().split(".")[0]
        self._sweep_every = sweep_every
        self._last_sweep = 0.0
        self._keepalive = keepalive
        self.metrics = metrics
        self._rewrite_at: float | None = None
        self._where: Where | None = None
        self._warned_unknown = ""
        self._contained_noted = False
        self.notes: list[Outcome] = []  # about the switch itself, for the page
        self.pipeline: Pipeline | None = None  # set by whoever builds both
        self.runner = ActionRunner(
            store,
            self.responders,
            wall=wall,
            keepalive=keepalive,
            metrics=metrics,
            on_recovered=self._recovered,
        )

    # -- from the pipeline -------------------------------------------------------

    def on_actions(self, actions: list[Action], where: Where) -> None:
        """The pipeline's ``on_actions``: warnings page, trips act."""
        warns = [a for a in actions if a.severity == "warn"]
        trips = [a for a in actions if a.severity != "warn"]
        for a in warns:
            self._warn(a, where)
        if trips:
            self.trip(trips, self.incident_for(trips[0], where), where)

    def incident_for(self, action: Action, where: Where) -> Incident:
        tz = self.pipeline.parser.tz if self.pipeline is not None else UTC
        description = ""
        first: LineRef | None = None
        domains: tuple[tuple[str, int], ...] = ()
        if self.pipeline is not None and action.rule in self.pipeline.summaries:
            s = self.pipeline.summaries[action.rule]
            description = s.rule.description
            if s.first is not None:
                first = LineRef(iso(s.first.time, tz), s.first.source, s.first.lineno,
                                s.first.text, 1)  # fmt: skip
            domains = tuple(s.by_domain.most_common(10))
        trip = LineRef(iso(where.time, tz), where.source, where.lineno, where.text, action.count)
        return Incident(
            id=incident_id(wall_us(self._wall()), action.rule),
            rule=action.rule,
            description=description,
            window_seconds=action.window_seconds,
            threshold=action.threshold,
            trip=trip,
            first_match=first,
            top_domains=domains,
            host=self.host,
            fleet=self.pipeline.fleet_shares.get(action.rule, ()) if self.pipeline else (),
        )

    def _warn(self, action: Action, where: Where) -> None:
        log.warning(
            "rule %s warns: %d in %g s (warn_at %d) at %s:%d",
            action.rule, action.count, action.window_seconds, action.threshold,
            where.source, where.lineno,
        )  # fmt: skip
        if self._page is not None and self._warning is not None:
            title, body = self._warning(self.incident_for(action, where))
            self._page(title, body, "warning")

    # -- tripping ----------------------------------------------------------------

    def trip(self, actions: Sequence[Action], incident: Incident, where: Where | None) -> None:
        """Latch (first), then carry out each action once, in ACTION_ORDER; actions
        that failed before are tried again at once."""
        now = self._wall()
        record = TripRecord(
            rule=incident.rule,
            at=iso_wall(now),
            count=incident.count,
            threshold=incident.threshold,
            log_time=incident.trip_time,
            source=where.source if where is not None else MANUAL,
            line=where.lineno if where is not None else 0,
            text=incident.trip_line,
        )
        with self.store.locked() as latch:
            first = not latch.tripped or bool(latch.unknown)
            if first:
                if latch.unknown:
                    self._set_aside_unknown(latch.unknown)
                latch.start(incident, iso_wall(now), now)
                log.error(
                    "TRIPPED by %s: %d in %g s (trip_at %d); incident %s",
                    incident.rule, incident.count, incident.window_seconds,
                    incident.threshold, incident.id,
                )  # fmt: skip
            latch.trips.append(record)
            failed_before = latch.failed()
            added = latch.plan(actions)
        if first and self.metrics is not None:
            self.metrics.record_trip(incident.rule)
        if added:
            self._where = where
            self.runner.run_unfinished(self._before)
        if failed_before:  # e.g. stormwatch trip on a latch whose freeze had failed
            self.runner.retry_failed(force=failed_before)
        self._ladder_steps()
        if not first and any(a.severity == "escalate" for a in added):
            self._page_escalation()
        if added:
            latest = self.store.read().incident
            self.write_report(latest or incident, where)
            self._rewrite_at = self._wall() + REPORT_REWRITE_SECONDS

    def _ladder_steps(self) -> None:
        """Tell the pipeline's ladder when its steps took effect (on the log's clock: the
        newest line read when the outcome came), so escalation waits from then."""
        p = self.pipeline
        if p is None:
            return
        latch = self.store.read()
        offender = latch.latest("contain-offender")
        if offender is not None and latch.incident is not None and not self._contained_noted:
            # ok or not (a client on this host cannot be blocked): the ladder watches its mail
            summary = p.summaries.get(latch.incident.rule)
            planned = next((a for a in latch.planned if a.kind == "contain-offender"), None)
            if summary is not None and planned is not None:
                self._contained_noted = True
                p.ladder.contained(summary.rule, p.last_time or 0, planned.offender)
        contained = latch.latest("contain-postfix")
        if contained is not None and contained.ok and latch.incident is not None:
            summary = p.summaries.get(latch.incident.rule)
            if summary is not None and not self._contained_noted:
                self._contained_noted = True
                p.ladder.contained(summary.rule, p.last_time or 0)
        frozen = latch.latest("freeze-postfix")
        if frozen is not None and frozen.ok:
            p.ladder.frozen()

    def _page_escalation(self) -> None:
        latch = self.store.read()
        record = latch.latest("freeze-postfix")
        if self._page is None or latch.incident is None or record is None:
            return
        title, body = render_escalated(latch.incident, outcome_of(record))
        self._page(title, body, "failure")

    def _before(self, kind: str) -> Incident | None:
        """The incident to act on: for the page, named after its freshly written report."""
        latch = self.store.read()
        if kind != "notify" or latch.incident is None:
            return None
        return self.write_report(latch.incident, self._where)

    def _set_aside_unknown(self, why: str) -> None:
        aside = self.store.set_aside(self._wall())
        self.notes.append(
            Outcome(
                "latch",
                False,
                f"the previous latch.json could not be used ({why}); "
                + (f"moved to {aside}" if aside else "it was left where it was"),
            )
        )

    def write_report(self, incident: Incident, where: Where | None) -> Incident:
        """Write the incident folder; the incident, now naming its folder. A failure is
        logged: a report never stops a trip."""
        if self._reporter is None:
            return incident
        try:
            return self._reporter(incident, where, self.pipeline, self.store.read())
        except (OSError, ValueError, KeyError, StateError):
            log.exception("could not write the report of incident %s", incident.id)
            return incident

    def outcomes(self) -> list[Outcome]:
        """What this incident's actions reported so far (for the page), and anything the
        admin must know about the switch itself (a latch that could not be saved)."""
        out = current_outcomes(self.store.read())
        if self.store.save_error:
            out.append(
                Outcome(
                    "latch",
                    False,
                    f"latch.json could NOT be saved ({self.store.save_error}): the trip is "
                    "held in memory and saved as soon as it can be; a restart before then "
                    "forgets it",
                )
            )
        return [*out, *self.notes]

    # -- while tripped -------------------------------------------------------------

    def tick(self) -> None:
        """Periodic work: save what could not be saved, finish what a crash cut short,
        retry what failed, follow re-arms by others, hold new arrivals, remind."""
        self.store.flush()
        latch = self.store.read()
        decider = self.pipeline.decider if self.pipeline is not None else None
        if latch.unknown:
            self._warn_unknown(latch.unknown)
            return
        if not latch.tripped:
            if decider is not None and decider.tripped:
                log.warning("re-armed: watching again")
                assert self.pipeline is not None
                self.pipeline.rearm()
                self.notes.clear()
                self._contained_noted = False
            return
        if decider is not None and not decider.tripped:
            # tripped by another process (stormwatch trip), or before a restart
            decider.restore({}, {a.kind for a in latch.planned} | latch.done() | {"notify"})
        if latch.unfinished():
            log.warning("finishing the trip's actions that did not finish (a restart?)")
            self.runner.run_unfinished(self._before)
        self.runner.retry_failed()
        self._ladder_steps()
        now = self._wall()
        if self._rewrite_at is not None and now >= self._rewrite_at and latch.incident:
            # lines logged between the trip and the freeze were read since: add them
            self._rewrite_at = None
            self.write_report(latch.incident, None)
        if now - self._last_sweep >= self._sweep_every:
            self._last_sweep = now
            if self._hold_sweep is not None:
                self._sweep()
            self._sweep_offender(latch)
        self._remind(latch, now)

    def _warn_unknown(self, why: str) -> None:
        if self._warned_unknown == why:
            return
        self._warned_unknown = why
        log.error("the latch cannot be read (%s): tripped, state unknown", why)
        if self._page is not None:
            title, body = render_unknown_latch(why, host=self.host)
            self._page(title, body, "failure")

    def _remind(self, latch: Latch, now: float) -> None:
        minutes = self.settings.notify.reminder_minutes
        last = latch.last_reminder_epoch or now
        if not (minutes > 0 and now - last >= minutes * 60 and self._page and self._reminder):
            return
        if latch.incident is None:
            return
        since = timedelta(seconds=now - (latch.since_epoch or now))
        title, body = self._reminder(latch.incident, since, len(latch.held))
        self._page(title, body, "warning")
        with self.store.locked() as fresh:
            if fresh.tripped:
                fresh.last_reminder_epoch = now

    def _recovered(self, incident: Incident, record: ActionRecord) -> None:
        if self._page is not None:
            title, body = render_recovered(incident, outcome_of(record), record.attempt)
            self._page(title, body, "success")

    def _sweep_offender(self, latch: Latch) -> None:
        """Hold the offender's mail the join saw since the trip (through a service the
        block does not cover, or queued from the maildrop before it)."""
        planned = next((a for a in latch.planned if a.kind == "contain-offender"), None)
        if planned is None or self._offender_sweep is None or self.pipeline is None:
            return
        last = latch.latest("contain-offender")
        if last is not None and last.details.get("lifted"):
            return  # rearm --offender lifted its block: its new mail is no longer held
        ids = [q for q in queue_ids_of(self.pipeline.correlator, planned.offender)
               if q not in latch.held]  # fmt: skip
        if not ids:
            return
        try:
            new = self._offender_sweep(ids)
        except Exception as exc:
            log.error("offender hold sweep failed: %s", exc)
            return
        if new:
            log.warning("held %d more message(s) of offender %s", len(new), planned.offender)
            with self.store.locked() as fresh:
                if fresh.tripped:
                    fresh.add_held(new)

    def _sweep(self) -> None:
        assert self._hold_sweep is not None
        planned = self.store.read().planned
        recipients = [r for a in planned if a.kind == "hold-bounces" for r in a.addresses]
        try:
            new = self._hold_sweep(recipients)
        except Exception as exc:
            log.error("hold sweep failed: %s", exc)
            return
        if new:
            log.warning("held %d more storm message(s)", len(new))
            with self.store.locked() as latch:
                if latch.tripped:
                    latch.add_held(new)


# -- a trip by hand ---------------------------------------------------------------------


def manual_actions(settings: Settings, now_us: int, *, freeze: bool = False) -> list[Action]:
    """What ``stormwatch trip`` does: every action a default rule takes (and the command,
    if one is configured); ``freeze``: the whole-host freeze (the ladder's step 3)
    instead of the scoped containment."""
    kinds: list[ActionKind] = [
        "freeze-postfix" if freeze else "contain-postfix",
        "hold-bounces",
        "stop-fetchmail",
        "notify",
    ]
    if settings.command.argv:
        kinds.insert(3, "command")
    return [Action(k, "trip", MANUAL, now_us, 0, 0, 0.0) for k in kinds]


def manual_incident(reason: str, now: float) -> Incident:
    stamp = iso(wall_us(now), UTC, "seconds")
    return Incident(
        id=incident_id(wall_us(now), MANUAL),
        rule=MANUAL,
        description=reason,
        trip=LineRef(stamp, MANUAL, 0, f"manual trip: {reason}", 0),
    )
