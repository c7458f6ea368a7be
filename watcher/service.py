"""``stormwatch run``: put the sources, the pipeline and the responders together.

Dry run: the responders print what they would do. Live: the kill switch acts,
pages through apprise, holds storm mail while tripped and reminds. Either way
the same pipeline runs; signal handlers only set flags.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from watcher import clock
from watcher.config import Settings
from watcher.daemon import Watcher
from watcher.decide import Action
from watcher.events import LogLoss
from watcher.parse import Parser
from watcher.pipeline import Pipeline, Where
from watcher.responders.dryrun import DryRunResponder
from watcher.rules import Rule
from watcher.sources.base import Source
from watcher.state import ensure_state_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunOptions:
    dry_run: bool
    notify_urls: tuple[str, ...] = ()


class DryRunPrinter:
    """``on_actions`` for a dry run: print each planned step as it is decided."""

    def __init__(self, settings: Settings, out: TextIO) -> None:
        self.responder = DryRunResponder(settings)
        self.out = out

    def __call__(self, actions: list[Action], where: Where) -> None:
        before = len(self.responder.planned)
        self.responder(actions, where)
        for p in self.responder.planned[before:]:
            self.out.write(
                f"DRY RUN [{p.action.severity}] {p.action.kind} ({p.action.rule}) "
                f"at {where.source}:{where.lineno}\n"
            )
            for step in p.steps:
                self.out.write(f"    would {step}\n")
        self.out.flush()


def warn_log_loss(ev: LogLoss, where: Where) -> None:
    lost = f"{ev.lost} lines" if ev.lost else "lines"
    log.warning(
        "%s dropped %s by rate limiting (%s:%d): the watcher is partly blind; "
        "see the README on turning the limit off for Postfix",
        ev.daemon,
        lost,
        where.source,
        where.lineno,
    )


def run(
    settings: Settings, rules: Sequence[Rule], sources: Sequence[Source], options: RunOptions
) -> int:
    """Run until SIGTERM/SIGINT; 0 on a clean stop."""
    ensure_state_dir(settings.state_dir)
    tz = clock.zone(settings.timezone)
    parser = Parser(reference=clock.now(), tz=tz)
    stop = threading.Event()
    if options.dry_run:
        pipeline = Pipeline.build(
            rules,
            parser,
            content_filters=settings.content_filters,
            max_open=settings.correlate.max_open,
            ttl_seconds=settings.correlate.ttl_seconds,
            on_actions=DryRunPrinter(settings, sys.stdout),
            on_loss=warn_log_loss,
        )
        watcher = Watcher(pipeline, sources, state_dir=settings.state_dir)
        _on_signals(stop)
        log.warning("watching (dry run): %s", ", ".join(s.name for s in sources))
        watcher.run(stop)
        return 0

    from watcher import killswitch
    from watcher.responders.notify import Notifier, render_log_loss

    notifier = Notifier.from_settings(settings.notify, options.notify_urls)
    for problem in notifier.problems:
        log.warning("notify: %s", problem)
    switch = killswitch.build(settings, notifier)

    def on_loss(ev: LogLoss, where: Where) -> None:
        warn_log_loss(ev, where)
        title, body = render_log_loss(ev.lost, where.text, host=switch.host)
        notifier.send(title, body, "warning")

    pipeline = Pipeline.build(
        rules,
        parser,
        content_filters=settings.content_filters,
        max_open=settings.correlate.max_open,
        ttl_seconds=settings.correlate.ttl_seconds,
        on_actions=switch.on_actions,
        on_loss=on_loss,
    )
    switch.pipeline = pipeline
    switch.tick()  # a latch from before a restart: stay tripped, act no more
    if pipeline.decider.tripped:
        log.error("the switch is TRIPPED (from the state file): run 'stormwatch rearm' to re-arm")
    watcher = Watcher(
        pipeline,
        sources,
        state_dir=settings.state_dir,
        on_tick=switch.tick,
        status_every=2.0,
    )
    notifier.start()
    _on_signals(stop)
    log.warning("watching: %s", ", ".join(s.name for s in sources))
    try:
        watcher.run(stop)
    finally:
        notifier.stop(timeout=10)
    return 0


def _on_signals(stop: threading.Event) -> None:
    def on_signal(signum: int, frame: object) -> None:
        stop.set()  # only a flag: the loop notices within a poll interval

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
