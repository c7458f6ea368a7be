"""Wires the fleet's shared windows into a run: the pipeline's shared matches go to the
:class:`~watcher.fleet.sharer.Sharer`, the fleet's counts come back to the pipeline's
decider, outages and their end are logged and paged.

Everything here runs on the pipeline's thread except the sharer's worker; the
pipeline never waits for Redis.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Sequence
from datetime import UTC
from typing import Any

from watcher.core.detect import Hit
from watcher.core.events import MICROS
from watcher.core.fleet import FleetCount, Shared, event_id, shares_text
from watcher.core.fleetlatch import FleetLatch, HostState
from watcher.core.pipeline import Pipeline, Where
from watcher.core.rules import Rule
from watcher.core.settings import FleetSettings
from watcher.core.times import iso
from watcher.fleet.sharer import Hosts, Outage, Resumed, Sharer, Store
from watcher.fleet.store import FleetStore, connect

log = logging.getLogger(__name__)

Page = Callable[[str, str], None]  # title, body: a warning page
# this host's latch: (tripped, incident id, rule, offender), for the fleet latch
LatchView = Callable[[], tuple[bool, str, str, str]]
Rearm = Callable[[str], None]  # re-arm this host's incident (stormwatch fleet rearm)


def host_name(settings: FleetSettings) -> str:
    return settings.host or socket.gethostname().split(".")[0]


def fleet_store(settings: FleetSettings) -> FleetStore:
    """The fleet's store for ``stormwatch fleet``: no I/O until used (then
    redis.RedisError or OSError when Redis cannot be asked). FleetConfigError for
    unusable settings."""
    return FleetStore(connect(settings), settings.name, host_name(settings))


class FleetLink:
    """Between one pipeline and one sharer."""

    def __init__(
        self,
        sharer: Sharer,
        host: str,
        page: Page | None = None,
        latch: LatchView | None = None,
        *,
        act: bool = False,
        rearm: Rearm | None = None,
    ) -> None:
        self.sharer = sharer
        self.rearm = rearm
        self.cause = ""  # the other host's incident this host tripped for
        self.act = act  # [fleet] on_trip = "ladder": trip the same rule here
        self.host = host
        self.page = page
        self.latch = latch
        self.counts: dict[tuple[str, str], int] = {}  # the fleet's count per group, last read
        self.fleet_latch = FleetLatch(host)
        self.hosts: list[HostState] = []  # every host's state, as last read
        self._state_due = 0.0  # monotonic: when this host's state is read again

    @classmethod
    def build(
        cls,
        settings: FleetSettings,
        rules: Sequence[Rule],
        page: Page | None = None,
        store: Store | None = None,
        latch: LatchView | None = None,
        rearm: Rearm | None = None,
    ) -> FleetLink | None:
        """None without a fleet URL or without a shared rule (said in the log)."""
        shared = [r.name for r in rules if r.shared]
        if not settings.url:
            if shared:
                log.warning(
                    "fleet: rule(s) %s are shared but [fleet] url is empty: counting locally",
                    ", ".join(shared),
                )
            return None
        if not shared:
            log.warning("fleet: [fleet] url is set but no rule has shared = true")
            return None
        host = host_name(settings)
        real = store or FleetStore(connect(settings), settings.name, host)
        sharer = Sharer(
            real,
            queue_size=settings.queue_size,
            poll_seconds=settings.poll_seconds,
            retry_seconds=settings.retry_seconds,
        )
        log.warning(
            "fleet %s: sharing rule(s) %s as host %s", settings.name, ", ".join(shared), host
        )
        return cls(sharer, host, page, latch, act=settings.on_trip == "ladder", rearm=rearm)

    def attach(self, pipeline: Pipeline) -> None:
        pipeline.on_shared = self.on_shared
        self.sharer.start()

    def on_shared(self, hit: Hit, where: Where) -> None:
        window = int(hit.rule.window.seconds * MICROS)
        member = event_id(where.source, where.text)
        self.sharer.offer(Shared(hit.rule.name, hit.key, window, hit.fact.event.time, member))

    def poll(self, pipeline: Pipeline) -> None:
        """What the worker reported: counts to decide on, an outage, its end."""
        from watcher.responders.notify.text import render_fleet_down, render_fleet_up

        now = time.monotonic()
        if now >= self._state_due:  # poll runs at every turn of the loop: not every time
            self._state_due = now + self.sharer.poll_seconds / 2
            self.sharer.state = self._state(pipeline)
        for report in self.sharer.take():
            if isinstance(report, FleetCount):
                self._count(pipeline, report)
            elif isinstance(report, Hosts):
                self._hosts(pipeline, report)
            elif isinstance(report, Outage):
                log.error(
                    "fleet: Redis unreachable, counting locally (%s); trying again every %g s",
                    report.problem,
                    self.sharer.retry_seconds,
                )
                if self.page is not None:
                    self.page(*render_fleet_down(report.problem, host=self.host))
            elif isinstance(report, Resumed):
                log.warning(
                    "fleet: Redis reachable again after %.0f s: sharing resumed (%d match(es)"
                    " still in their windows sent again)",
                    report.down_for,
                    report.resent,
                )
                if self.page is not None:
                    self.page(*render_fleet_up(report.resent, host=self.host,
                                               down_for=report.down_for))  # fmt: skip

    def _state(self, pipeline: Pipeline) -> HostState:
        tripped, incident, rule, offender = self.latch() if self.latch else (False, "", "", "")
        if not tripped:
            self.cause = ""
        last = pipeline.last_time
        return HostState(
            self.host, tripped, incident, rule, offender,
            iso(last, UTC) if last is not None else "",
            "up" if self.sharer.up else "down", time.time(), self.cause,
        )  # fmt: skip

    def _hosts(self, pipeline: Pipeline, report: Hosts) -> None:
        from watcher.responders.notify.text import render_fleet_trip

        self.hosts = report.states
        if report.rearm:
            self._rearm(report.rearm)
        for bad in report.unreadable:
            log.warning("fleet: a host's state in Redis cannot be read: %s", bad)
        for s in self.fleet_latch.news(report.states):
            log.error("fleet: host %s TRIPPED on rule %s (incident %s)", s.host, s.rule,
                      s.incident)  # fmt: skip
            acted = self.act and self._trip_here(pipeline, s)
            if self.page is not None and not acted:  # acting here pages the trip itself
                self.page(*render_fleet_trip(s.host, s.rule, s.incident, s.offender,
                                             host=self.host))  # fmt: skip

    def _rearm(self, incident: str) -> None:
        """``stormwatch fleet rearm`` asked this host to re-arm ``incident``: done here,
        as ``stormwatch rearm`` would (held mail stays held), if it is still ours."""
        mine = self.latch()[1] if self.latch else ""
        if mine == incident and self.rearm is not None:
            log.warning("fleet: re-arming incident %s, as stormwatch fleet rearm asked", incident)
            try:
                self.rearm(incident)
            except Exception:  # RearmError, OSError: said; the request is answered anyway
                log.exception("fleet: the re-arm of incident %s failed", incident)
        self.sharer.rearmed = incident
        self._state_due = 0.0  # publish the new latch at once

    def _trip_here(self, pipeline: Pipeline, s: HostState) -> bool:
        """``on_trip = "ladder"``: the same rule trips here, on a line naming that host."""
        at = pipeline.last_time or 0
        text = f"fleet: host {s.host} tripped on rule {s.rule} (incident {s.incident})"
        actions = pipeline.trip_for_fleet(s.rule, s.offender, Where(f"fleet:{s.host}", 0, text, at))
        if actions:
            self.cause = s.incident
            log.error("fleet: tripping rule %s here too ([fleet] on_trip = ladder)", s.rule)
        return bool(actions)

    def _count(self, pipeline: Pipeline, count: FleetCount) -> None:
        if count.group not in self.counts and len(self.counts) >= 10_000:
            del self.counts[next(iter(self.counts))]
        self.counts[count.group] = count.total
        actions = pipeline.fleet_count(count)
        if actions:
            trips = any(a.severity != "warn" for a in actions)
            log.log(
                logging.ERROR if trips else logging.WARNING,
                "fleet: rule %s %s on the fleet's window: %s (%s %d)",
                count.rule,
                "trips" if trips else "warns",
                shares_text(count.shares),
                "trip_at" if trips else "warn_at",
                actions[0].threshold,
            )

    def status(self) -> dict[str, Any]:
        rules: dict[str, int] = {}
        for (rule, _key), n in self.counts.items():
            rules[rule] = max(rules.get(rule, 0), n)
        hosts = [{"host": h.host, "tripped": h.tripped, "incident": h.incident,
                  "last_event": h.last_event, "redis": h.redis} for h in self.hosts]  # fmt: skip
        return {"fleet": {"host": self.host, **self.sharer.status(), "rules": rules,
                          "hosts": hosts}}  # fmt: skip

    def stop(self) -> None:
        self.sharer.stop()
