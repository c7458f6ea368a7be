"""The kill switch: run a trip's actions in a safe order, latch, remind, re-arm.

The latch lives in ``<state_dir>/latch.json`` and is the truth: a trip is
written there *before* the first action, and each action's outcome right
after it. Several processes use it (the watcher, ``stormwatch trip``,
``stormwatch rearm``), so every change is a read-modify-write under an
exclusive lock on ``<state_dir>/latch.lock``; nobody trusts an in-memory copy.

Order of a trip's actions: the outflow first (freeze Postfix, then hold what
is queued), then the inflow (fetchmail), then the configured command, and the
page last, so that it can say what was done and what failed. A failing
responder is an outcome: the others still run, and so does the watcher.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watcher.core.decide import Action
from watcher.core.pipeline import Pipeline, Where
from watcher.core.rules import ActionKind
from watcher.core.settings import Settings
from watcher.core.times import iso_or_none as iso
from watcher.responders.base import Incident, Outcome, Responder
from watcher.responders.command import CommandResponder
from watcher.responders.notify import (
    Level,
    Notifier,
    NotifyResponder,
    render_reminder,
    render_warning,
)
from watcher.responders.postfix import (
    FreezeResponder,
    HoldResponder,
    PostfixControl,
    frozen_from,
    restore,
)
from watcher.responders.process import FetchmailResponder
from watcher.state.files import StateError, atomic_write_json, ensure_state_dir, read_json

if TYPE_CHECKING:
    from watcher.runtime.metrics import Metrics

log = logging.getLogger(__name__)

LATCH_FILE = "latch.json"
REPORT_REWRITE_SECONDS = 10.0  # then the lines logged up to the freeze have been read
LOCK_FILE = "latch.lock"
ORDER = ("freeze-postfix", "hold-bounces", "stop-fetchmail", "command", "notify")
MANUAL = "manual"
SCHEMA = 1

Page = Callable[[str, str, Level], None]  # (title, body, level)


def incident_id(when: float, rule: str) -> str:
    """``<UTC time>-<rule>`` for a wall-clock time in seconds."""
    from watcher.reports.incident import incident_id as from_micros

    return from_micros(int(when * 1_000_000), rule)


def incident_to_json(i: Incident) -> dict[str, Any]:
    return {
        "id": i.id,
        "rule": i.rule,
        "description": i.description,
        "count": i.count,
        "threshold": i.threshold,
        "window_seconds": i.window_seconds,
        "first_time": i.first_time,
        "trip_time": i.trip_time,
        "trip_line": i.trip_line,
        "top_domains": [list(d) for d in i.top_domains],
        "host": i.host,
    }


def incident_from_json(d: Mapping[str, Any]) -> Incident:
    return Incident(
        id=str(d["id"]),
        rule=str(d["rule"]),
        description=str(d.get("description", "")),
        count=int(d.get("count", 0)),
        threshold=int(d.get("threshold", 0)),
        window_seconds=float(d.get("window_seconds", 0)),
        first_time=str(d.get("first_time", "")),
        trip_time=str(d.get("trip_time", "")),
        trip_line=str(d.get("trip_line", "")),
        top_domains=tuple((str(k), int(n)) for k, n in d.get("top_domains", ())),
        host=str(d.get("host", "")),
    )


def outcome_to_json(o: Outcome, at: float) -> dict[str, Any]:
    return {
        "kind": o.kind,
        "ok": o.ok,
        "summary": o.summary,
        "details": o.details,
        "at": iso_wall(at),
    }


def outcome_from_json(d: Mapping[str, Any]) -> Outcome:
    return Outcome(str(d["kind"]), bool(d["ok"]), str(d["summary"]), dict(d.get("details", {})))


def iso_wall(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


class LatchStore:
    """``latch.json`` under a lock. ``None`` content means never tripped."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / LATCH_FILE

    @contextlib.contextmanager
    def locked(self) -> Iterator[dict[str, Any]]:
        """Yield the latch for change; it is written back when the block ends."""
        ensure_state_dir(self.state_dir)
        fd = os.open(self.state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            latch = self.read()
            before = dict(latch)
            yield latch
            if latch != before:
                atomic_write_json(self.path, latch)
        finally:
            os.close(fd)  # releases the lock

    def read(self) -> dict[str, Any]:
        """The latch; ``{"tripped": False}`` if there is none. StateError if unreadable."""
        data = read_json(self.path)
        if data is None:
            return {"schema": SCHEMA, "tripped": False}
        if not isinstance(data, dict) or not isinstance(data.get("tripped"), bool):
            raise StateError(f"{self.path}: not a stormwatch latch (no 'tripped' flag)")
        return data


class KillSwitch:
    """Acts on the pipeline's actions with the real responders."""

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
        wall: Callable[[], float] = time.time,
        hostname: str | None = None,
        sweep_every: float = 5.0,
        keepalive: Callable[[], object] = lambda: None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.responders = dict(responders)
        self._page = page
        self._hold_sweep = hold_sweep
        self._reminder = reminder
        self._warning = warning
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
        now = self._wall()
        first_time, description = where.time, ""
        domains: tuple[tuple[str, int], ...] = ()
        if self.pipeline is not None and action.rule in self.pipeline.summaries:
            s = self.pipeline.summaries[action.rule]
            description = s.rule.description
            if s.first is not None:
                first_time = s.first.time
            domains = tuple(s.by_domain.most_common(10))
        tz = self.pipeline.parser.tz if self.pipeline is not None else UTC
        return Incident(
            id=incident_id(now, action.rule),
            rule=action.rule,
            description=description,
            count=action.count,
            threshold=action.threshold,
            window_seconds=action.window_seconds,
            first_time=iso(first_time, tz) or "",
            trip_time=iso(where.time, tz) or "",
            trip_line=where.text,
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
        """Latch (first, durably), then run each action once, in ORDER."""
        now = self._wall()
        evidence = {
            "rule": incident.rule,
            "at": iso_wall(now),
            "count": incident.count,
            "threshold": incident.threshold,
            "log_time": incident.trip_time,
            "source": where.source if where is not None else MANUAL,
            "line": where.lineno if where is not None else 0,
            "text": incident.trip_line,
        }
        with self.store.locked() as latch:
            if not latch["tripped"]:
                latch.clear()
                latch.update(
                    schema=SCHEMA,
                    tripped=True,
                    since=iso_wall(now),
                    since_epoch=now,
                    incident=incident_to_json(incident),
                    trips=[],
                    actions=[],
                    held=[],
                    last_reminder_epoch=now,
                )
                log.error(
                    "TRIPPED by %s: %d in %g s (trip_at %d); incident %s",
                    incident.rule, incident.count, incident.window_seconds,
                    incident.threshold, incident.id,
                )  # fmt: skip
            latch["trips"] = [*latch["trips"], evidence]
            done = {a["kind"] for a in latch["actions"]}
            the_incident = incident_from_json(latch["incident"])
        todo = [k for k in ORDER if k in {a.kind for a in actions} and k not in done]
        by_kind = {a.kind: a for a in actions}
        if not done and self.metrics is not None:
            self.metrics.record_trip(incident.rule)
        for kind in todo:
            if kind == "notify":  # the page names the report and carries its top
                the_incident = self.write_report(the_incident, where)
            self._keepalive()
            outcome = self._run(kind, by_kind[kind], the_incident)
            with self.store.locked() as latch:
                latch["actions"] = [*latch["actions"], outcome_to_json(outcome, self._wall())]
                if kind == "hold-bounces":
                    held = outcome.details.get("held")
                    if isinstance(held, list):
                        latch["held"] = sorted({*latch["held"], *map(str, held)})
            if self.metrics is not None:
                self.metrics.record_outcome(kind, outcome.ok)
            (log.info if outcome.ok else log.error)("%s: %s", kind, outcome.summary)
        if todo:
            self.write_report(the_incident, where)
            self._rewrite_at = self._wall() + REPORT_REWRITE_SECONDS

    def write_report(self, incident: Incident, where: Where | None) -> Incident:
        """Write the incident folder from the pipeline and the latch; the incident, now
        naming its folder. A failure is logged: a report never stops a trip."""
        from watcher.reports import incident as reports

        folder = self.store.state_dir / "incidents" / incident.id
        try:
            latch = self.store.read()
            tz = self.pipeline.parser.tz if self.pipeline is not None else UTC
            cfg = self.settings.postfix.config_directory
            p = self.pipeline
            if p is not None and incident.rule in p.summaries:
                window = p.summaries[incident.rule].rule.window.seconds
                anchor = where.time if where is not None else p.last_time or 0
                since = anchor - int(max(window, 600) * 1_000_000)
                data = reports.incident_data_from_replay(
                    p, incident.rule, tz, latch=latch, config_directory=cfg, since_us=since
                )
            else:
                data = reports.incident_data_from_latch(latch, tz, config_directory=cfg)
            reports.write_incident(folder, data)
            summary = tuple(reports.summary_lines(data)[:6])
        except (OSError, ValueError, KeyError, StateError):
            log.exception("could not write the incident report in %s", folder)
            return incident
        return replace(incident, report_dir=str(folder), report_summary=summary)

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
        return [outcome_from_json(a) for a in latch.get("actions", ())]

    # -- while tripped -------------------------------------------------------------

    def tick(self) -> None:
        """Periodic work: follow re-arms by others, hold new arrivals, remind."""
        try:
            latch = self.store.read()
        except StateError as exc:
            log.error("%s", exc)
            return
        decider = self.pipeline.decider if self.pipeline is not None else None
        if not latch["tripped"]:
            if decider is not None and decider.tripped:
                log.warning("re-armed: watching again")
                decider.rearm()
            return
        if decider is not None and not decider.tripped:
            # tripped by another process (stormwatch trip), or before a restart
            decider.restore({}, {a["kind"] for a in latch.get("actions", ())} | {"notify"})
        now = self._wall()
        if self._rewrite_at is not None and now >= self._rewrite_at:
            # lines logged between the trip and the freeze were read since: add them
            self._rewrite_at = None
            self.write_report(incident_from_json(latch["incident"]), None)
        if self._hold_sweep is not None and now - self._last_sweep >= self._sweep_every:
            self._last_sweep = now
            self._sweep()
        minutes = self.settings.notify.reminder_minutes
        last = float(latch.get("last_reminder_epoch", now))
        if minutes > 0 and now - last >= minutes * 60 and self._page and self._reminder:
            since = timedelta(seconds=now - float(latch.get("since_epoch", now)))
            incident = incident_from_json(latch["incident"])
            title, body = self._reminder(incident, since, len(latch.get("held", ())))
            self._page(title, body, "warning")
            with self.store.locked() as fresh:
                if fresh["tripped"]:
                    fresh["last_reminder_epoch"] = now

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
                if latch["tripped"]:
                    latch["held"] = sorted({*latch["held"], *new})


# -- building it, and undoing it ------------------------------------------------------


def build(
    settings: Settings,
    notifier: Notifier,
    *,
    keepalive: Callable[[], object] = lambda: None,
    metrics: Metrics | None = None,
) -> KillSwitch:
    """The kill switch with the real responders."""
    control = PostfixControl(settings.postfix.config_directory)
    hold = HoldResponder(settings, control)
    switch = KillSwitch(
        settings,
        LatchStore(settings.state_dir),
        {},
        page=notifier.send,
        hold_sweep=hold.sweep,
        reminder=lambda i, since, held: render_reminder(i, since, held_count=held),
        warning=render_warning,
        keepalive=keepalive,
        metrics=metrics,
    )
    switch.responders.update(
        {
            "freeze-postfix": FreezeResponder(settings, control),
            "hold-bounces": hold,
            "stop-fetchmail": FetchmailResponder(settings.fetchmail),
            "command": CommandResponder(settings.command),
            "notify": NotifyResponder(notifier, outcomes=switch.outcomes),
        }
    )
    return switch


def manual_actions(settings: Settings, reason: str, now_us: int) -> list[Action]:
    """What ``stormwatch trip`` does: every action a default rule takes (and the command,
    if one is configured)."""
    kinds: list[ActionKind] = ["freeze-postfix", "hold-bounces", "stop-fetchmail", "notify"]
    if settings.command.argv:
        kinds.insert(3, "command")
    return [Action(k, "trip", MANUAL, now_us, 0, 0, 0.0) for k in kinds]


def rearm(
    store: LatchStore,
    control: PostfixControl,
    *,
    release: bool,
    wall: Callable[[], float] = time.time,
) -> tuple[bool, list[str], Incident | None, int, int]:
    """Undo a trip: ``(was_tripped, steps, incident, released, still_held)``.

    Raises StateError if the latch cannot be read and PostfixError if Postfix
    cannot be put back; the latch then stays tripped, so it can be run again.
    """
    with store.locked() as latch:
        if not latch["tripped"]:
            return False, ["the switch is not tripped: nothing to undo"], None, 0, 0
        incident = incident_from_json(latch["incident"])
        steps: list[str] = []
        for a in latch["actions"]:
            if a["kind"] == "freeze-postfix" and a.get("details", {}).get("applied"):
                steps += restore(control, frozen_from(a["details"]))
        ours = set(latch.get("held", ()))
        on_hold = [
            e["queue_id"]
            for e in control.queue()
            if e.get("queue_name") == "hold" and e.get("queue_id") in ours
        ]
        released = 0
        if release and on_hold:
            released = control.postsuper("-H", on_hold)
            control.flush()
            steps.append(f"released {released} held message(s) and flushed the queue")
        elif on_hold:
            steps.append(
                f"{len(on_hold)} message(s) stay on hold (the storm's bounces and looping "
                "originals; held mail never expires): 'stormwatch rearm --release-held' was "
                "not given. Inspect with postqueue -j; release one with postsuper -H ID"
            )
        archive = store.state_dir / "incidents" / incident.id
        ensure_state_dir(archive)
        atomic_write_json(archive / "latch.json", latch)
        still = len(on_hold) - released
        latch.clear()
        latch.update(
            schema=SCHEMA,
            tripped=False,
            last_incident=incident.id,
            rearmed_at=iso_wall(wall()),
            still_held=sorted(set(on_hold) - set(on_hold[:released])) if still else [],
        )
        steps.append(f"re-armed; the incident's record is in {archive}")
    return True, steps, incident, released, still
