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
from watcher.core.pipeline import Pipeline, Where
from watcher.core.rules import ACTION_ORDER, ActionKind
from watcher.core.settings import Settings
from watcher.core.times import iso, wall_us
from watcher.responders.base import Level, Outcome, Responder
from watcher.responders.latchstore import LatchStore
from watcher.state.files import StateError

log = logging.getLogger(__name__)

REPORT_REWRITE_SECONDS = 10.0  # then the lines logged up to the freeze have been read

Page = Callable[[str, str, Level], None]  # (title, body, level)
Reporter = Callable[[Incident, "Where | None", "Pipeline | None", Latch], Incident]


class SwitchMetrics(Protocol):
    """What the switch tells the metrics (:class:`watcher.runtime.metrics.Metrics`)."""

    def record_trip(self, rule: str) -> None: ...

    def record_outcome(self, kind: str, ok: bool) -> None: ...


def iso_wall(t: float) -> str:
    """A wall-clock time as the latch records it: ISO 8601 UTC, milliseconds."""
    return iso(wall_us(t), UTC, "milliseconds")


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
        hold_sweep: Callable[[], list[str]] | None = None,
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
        self.pipeline: Pipeline | None = None  # set by whoever builds both

    # -- from the pipeline -------------------------------------------------------

    def on_actions(self, actions: list[Action], where: Where) -> None:
        """The pipeline's ``on_actions``: warnings page, trips act."""
        warns = [a for a in actions if a.severity == "warn"]
        trips = [a for a in actions if a.severity == "trip"]
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
        """Latch (first, durably), then run each action once, in ACTION_ORDER."""
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
            if not latch.tripped:
                latch.start(incident, iso_wall(now), now)
                log.error(
                    "TRIPPED by %s: %d in %g s (trip_at %d); incident %s",
                    incident.rule, incident.count, incident.window_seconds,
                    incident.threshold, incident.id,
                )  # fmt: skip
            latch.trips.append(record)
            done = latch.done()
            assert latch.incident is not None
            the_incident = latch.incident
        wanted = {a.kind for a in actions}
        todo = [k for k in ACTION_ORDER if k in wanted and k not in done]
        by_kind = {a.kind: a for a in actions}
        if not done and self.metrics is not None:
            self.metrics.record_trip(incident.rule)
        for kind in todo:
            if kind == "notify":  # the page names the report and carries its top
                the_incident = self.write_report(the_incident, where)
            self._keepalive()
            outcome = self._run(kind, by_kind[kind], the_incident)
            with self.store.locked() as latch:
                latch.actions.append(
                    ActionRecord(
                        outcome.kind,
                        outcome.ok,
                        outcome.summary,
                        iso_wall(self._wall()),
                        outcome.details,
                    )
                )
                if kind == "hold-bounces":
                    held = outcome.details.get("held")
                    if isinstance(held, list):
                        latch.add_held([str(q) for q in held])
            if self.metrics is not None:
                self.metrics.record_outcome(kind, outcome.ok)
            (log.info if outcome.ok else log.error)("%s: %s", kind, outcome.summary)
        if todo:
            self.write_report(the_incident, where)
            self._rewrite_at = self._wall() + REPORT_REWRITE_SECONDS

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

    def _run(self, kind: str, action: Action, incident: Incident) -> Outcome:
        responder = self.responders.get(kind)
        if responder is None:
            return Outcome(kind, False, f"no responder for {kind!r} is configured")
        try:
            return responder.respond(action, incident)
        except Exception as exc:  # a bug in one responder must not stop the others
            log.exception("%s failed", kind)
            return Outcome(kind, False, f"{kind} crashed: {type(exc).__name__}: {exc}")

    def outcomes(self) -> list[Outcome]:
        """What this incident's actions reported so far (for the page)."""
        try:
            latch = self.store.read()
        except StateError:
            return []
        return [outcome_of(a) for a in latch.actions]

    # -- while tripped -------------------------------------------------------------

    def tick(self) -> None:
        """Periodic work: follow re-arms by others, hold new arrivals, remind."""
        try:
            latch = self.store.read()
        except StateError as exc:
            log.error("%s", exc)
            return
        decider = self.pipeline.decider if self.pipeline is not None else None
        if not latch.tripped:
            if decider is not None and decider.tripped:
                log.warning("re-armed: watching again")
                decider.rearm()
            return
        if decider is not None and not decider.tripped:
            # tripped by another process (stormwatch trip), or before a restart
            decider.restore({}, latch.done() | {"notify"})
        now = self._wall()
        if self._rewrite_at is not None and now >= self._rewrite_at and latch.incident:
            # lines logged between the trip and the freeze were read since: add them
            self._rewrite_at = None
            self.write_report(latch.incident, None)
        if self._hold_sweep is not None and now - self._last_sweep >= self._sweep_every:
            self._last_sweep = now
            self._sweep()
        minutes = self.settings.notify.reminder_minutes
        last = latch.last_reminder_epoch or now
        if (
            minutes > 0
            and now - last >= minutes * 60
            and self._page
            and self._reminder
            and latch.incident
        ):
            since = timedelta(seconds=now - (latch.since_epoch or now))
            title, body = self._reminder(latch.incident, since, len(latch.held))
            self._page(title, body, "warning")
            with self.store.locked() as fresh:
                if fresh.tripped:
                    fresh.last_reminder_epoch = now

    def _sweep(self) -> None:
        assert self._hold_sweep is not None
        try:
            new = self._hold_sweep()
        except Exception as exc:
            log.error("hold sweep failed: %s", exc)
            return
        if new:
            log.warning("held %d more storm message(s)", len(new))
            with self.store.locked() as latch:
                if latch.tripped:
                    latch.add_held(new)


# -- a trip by hand ---------------------------------------------------------------------


def manual_actions(settings: Settings, now_us: int) -> list[Action]:
    """What ``stormwatch trip`` does: every action a default rule takes (and the command,
    if one is configured)."""
    kinds: list[ActionKind] = ["freeze-postfix", "hold-bounces", "stop-fetchmail", "notify"]
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
