"""The kill switch with the real responders, and its incident report on disk.

:class:`~watcher.responders.killswitch.KillSwitch` is given everything it
touches; this module gives it the real things: Postfix's tools, psutil for
fetchmail, the configured command, apprise pages, and a report writer that
puts ``report.md``, ``report.json``, ``timeline.svg`` and ``evidence.log``
into ``<state_dir>/incidents/<id>/``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC
from pathlib import Path

from watcher.core.incident import Incident
from watcher.core.latch import Latch
from watcher.core.pipeline import Pipeline, Where
from watcher.core.settings import Settings
from watcher.reports import build as reports
from watcher.reports.markdown import summary_lines
from watcher.reports.store import write_incident
from watcher.responders.command import CommandResponder
from watcher.responders.contain import ContainResponder
from watcher.responders.killswitch import KillSwitch, SwitchMetrics
from watcher.responders.latchstore import LatchStore
from watcher.responders.notify.delivery import Notifier
from watcher.responders.notify.responder import NotifyResponder
from watcher.responders.notify.text import render_reminder, render_warning
from watcher.responders.offender import OffenderResponder
from watcher.responders.postfix import (
    FreezeResponder,
    HoldResponder,
    PostfixControl,
    PostfixError,
)
from watcher.responders.process import FetchmailResponder

log = logging.getLogger(__name__)

PAGE_SUMMARY_LINES = 6


class ReportWriter:
    """Writes a live incident's folder from the pipeline (or the latch alone, for a
    trip by hand); returns the incident naming its folder and the report's top."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(
        self, incident: Incident, where: Where | None, pipeline: Pipeline | None, latch: Latch
    ) -> Incident:
        folder = Path(self.settings.state_dir) / "incidents" / incident.id
        cfg = self.settings.postfix.config_directory
        tz = pipeline.parser.tz if pipeline is not None else UTC
        if pipeline is not None and incident.rule in pipeline.summaries:
            window = pipeline.summaries[incident.rule].rule.window.seconds
            anchor = where.time if where is not None else pipeline.last_time or 0
            since = anchor - int(max(window, 600) * 1_000_000)
            report = reports.from_pipeline(
                pipeline, incident.rule, tz, latch=latch, config_directory=cfg, since_us=since
            )
        else:
            report = reports.from_latch(latch, tz, config_directory=cfg)
        write_incident(folder, report)
        summary = tuple(summary_lines(report)[:PAGE_SUMMARY_LINES])
        return replace(incident, report_dir=str(folder), report_summary=summary)


def build(
    settings: Settings,
    notifier: Notifier,
    *,
    keepalive: Callable[[], object] = lambda: None,
    metrics: SwitchMetrics | None = None,
) -> KillSwitch:
    """The kill switch with the real responders."""
    control = PostfixControl(settings.postfix.config_directory)
    hold = HoldResponder(settings, control)
    offender = OffenderResponder(settings, control)
    switch = KillSwitch(
        settings,
        LatchStore(settings.state_dir),
        {},
        page=notifier.send,
        hold_sweep=hold.sweep,
        offender_sweep=offender.sweep,
        reminder=lambda i, since, held: render_reminder(i, since, held_count=held),
        warning=render_warning,
        reporter=ReportWriter(settings),
        keepalive=keepalive,
        metrics=metrics,
    )
    contain = ContainResponder(settings, control)
    try:
        contain.precheck()  # at start, not on the storm's clock
    except PostfixError as exc:
        log.warning("contain-postfix: the null-sender table cannot be checked now: %s", exc)
    switch.responders.update(
        {
            "contain-offender": offender,
            "contain-postfix": contain,
            "freeze-postfix": FreezeResponder(settings, control),
            "hold-bounces": hold,
            "stop-fetchmail": FetchmailResponder(settings.fetchmail),
            "command": CommandResponder(settings.command),
            "notify": NotifyResponder(notifier, outcomes=switch.outcomes),
        }
    )
    return switch
