"""``stormwatch run``: put the sources, the pipeline and the responders together.

Dry run: the responders print what they would do. Live: the kill switch acts,
pages through apprise, holds storm mail while tripped and reminds. Either way
the same pipeline runs.

Under systemd (``Type=notify``) it says READY=1 once the sources are open and
the latch is loaded, keeps STATUS= current, pings the watchdog from the
pipeline's own loop (a wedged pipeline is restarted, not only a dead
process) and says STOPPING=1. SIGHUP re-reads the settings and rules: if the
new ones are invalid it keeps the old ones and says why; windows and the
latch survive. Signal handlers only set flags.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from watcher.core.decide import Action
from watcher.core.events import LogLoss
from watcher.core.headers import EXAMPLES, FormatChange, SourceHeaders
from watcher.core.parse import Parser
from watcher.core.pipeline import Pipeline, Where
from watcher.core.rules import Rule
from watcher.core.settings import Settings
from watcher.responders.dryrun import DryRunResponder
from watcher.responders.latchstore import LatchStore
from watcher.runtime import clock
from watcher.runtime.daemon import Watcher
from watcher.runtime.endpoint import MetricsEndpoint
from watcher.runtime.fleetlink import FleetLink
from watcher.runtime.metrics import Metrics, rule_status
from watcher.runtime.sdnotify import SystemdNotify, WatchdogPinger
from watcher.sources.base import Source
from watcher.state.files import ensure_state_dir
from watcher.state.runlock import RunLock
from watcher.state.trust import check_state_dir

log = logging.getLogger(__name__)

Reload = Callable[[], tuple[Settings, Sequence[Rule]]]


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


def log_format(change: FormatChange) -> None:
    """A source's header format: said when first found, and at each change."""
    if change.old is None:
        log.warning(
            "%s: header format %s (%s)", change.source, change.new, EXAMPLES.get(change.new, "")
        )
    else:
        log.warning(
            "%s: header format changed from %s to %s at line %d",
            change.source,
            change.old,
            change.new,
            change.lineno,
        )


def warn_blind(h: SourceHeaders) -> None:
    first = h.blind_first
    log.error(
        "%s: blind: %d Postfix lines in a row in an unknown format since line %d (%s): %s",
        h.source,
        h.blind_run,
        first.lineno if first else 0,
        first.reason if first else "",
        first.text if first else "",
    )


def warn_time_step(step: int, where: Where) -> None:
    log.warning(
        "log time went back %.0f s (%s:%d), beyond the shortest rule window: lines were "
        "dated ahead; the windows forget what was counted after this line's time",
        step / 1_000_000,
        where.source,
        where.lineno,
    )


class Flags:
    """What the signal handlers set; the loop acts on them."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.reload = threading.Event()

    def install(self) -> None:
        def on_stop(signum: int, frame: object) -> None:
            self.stop.set()

        def on_hup(signum: int, frame: object) -> None:
            self.reload.set()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)


def run(
    settings: Settings,
    rules: Sequence[Rule],
    sources: Sequence[Source],
    options: RunOptions,
    *,
    reload: Reload | None = None,
    notify: SystemdNotify | None = None,
) -> int:
    """Run until SIGTERM/SIGINT; 0 on a clean stop.

    Refuses (AlreadyRunning) while another watcher holds the state directory, and
    (UntrustedState) a state directory others could write to.
    """
    check_state_dir(settings.state_dir)
    ensure_state_dir(settings.state_dir)
    lock = RunLock(settings.state_dir)
    lock.acquire()
    try:
        return _run(settings, rules, sources, options, reload=reload, notify=notify)
    finally:
        lock.release()


def _latch_view(settings: Settings) -> Callable[[], tuple[bool, str, str, str]]:
    """This host's latch as the fleet latch publishes it, read from latch.json."""
    store = LatchStore(settings.state_dir)

    def view() -> tuple[bool, str, str, str]:
        latch = store.read()
        if not latch.tripped or latch.incident is None:
            return bool(latch.tripped), "", "", ""
        offender = next((a.offender for a in latch.planned if a.kind == "contain-offender"), "")
        return True, latch.incident.id, latch.incident.rule, offender

    return view


def _fleet_rearm(
    settings: Settings, page: Callable[[str, str], None] | None
) -> Callable[[str], None]:
    """What ``stormwatch fleet rearm`` has this watcher do: ``stormwatch rearm`` (held
    mail stays held), with its all-clear page."""

    def run(incident: str) -> None:
        from watcher.responders.notify.text import render_all_clear
        from watcher.responders.postfix import PostfixControl
        from watcher.responders.rearm import rearm

        control = PostfixControl(settings.postfix.config_directory)
        done = rearm(LatchStore(settings.state_dir), control, release=False)
        for step in done.steps:
            log.warning("fleet rearm: %s", step)
        if done.incident is not None and page is not None:
            page(*render_all_clear(done.incident, done.released, done.still_held))

    return run


def _run(
    settings: Settings,
    rules: Sequence[Rule],
    sources: Sequence[Source],
    options: RunOptions,
    *,
    reload: Reload | None,
    notify: SystemdNotify | None,
) -> int:
    flags = Flags()
    flags.install()  # before READY: a reload that early must not kill us
    sd = notify if notify is not None else SystemdNotify()
    pinger = WatchdogPinger(sd)
    parser = Parser(reference=clock.now(), tz=clock.zone(settings.timezone))
    metrics = Metrics() if settings.metrics.enabled else None
    build = _live if not options.dry_run else _dry
    pipeline, on_tick, on_stop, apply_settings, warn, page = build(
        settings, rules, parser, options, sd, metrics
    )
    endpoint = _endpoint(settings, metrics, warn)
    # [fleet] changes on a restart only
    fleet = FleetLink.build(
        settings.fleet, rules, page, latch=_latch_view(settings), rearm=_fleet_rearm(settings, page)
    )
    if fleet is not None:
        fleet.attach(pipeline)
    watcher: Watcher

    def tick() -> None:
        pinger.maybe_ping()  # first: a failing tick must not starve the watchdog
        if flags.reload.is_set():
            flags.reload.clear()
            _reload(reload, pipeline, apply_settings, sd)
        on_tick()
        if endpoint is not None:
            endpoint.ensure()  # a port held by another process is retried, never fatal
        st = watcher.status()
        if metrics is not None:
            metrics.update_from_status(st)
        sd.status(
            f"{st['state']}, {st['lines_per_second']} lines/s, "
            f"last event {st['last_event_time'] or 'none yet'}"
        )

    def stopping() -> None:
        sd.stopping()
        if fleet is not None:
            fleet.stop()
        on_stop()
        if endpoint is not None:
            endpoint.close()

    watcher = Watcher(
        pipeline,
        sources,
        state_dir=settings.state_dir,
        on_tick=tick,
        on_ready=sd.ready,
        on_stop=stopping,
        on_poll=(lambda: fleet.poll(pipeline)) if fleet is not None else None,
        status_every=2.0,
        extra_status=lambda: {
            **_extra_status(pipeline, settings),
            **(fleet.status() if fleet is not None else {}),
        },
    )
    mode = "dry run: " if options.dry_run else ""
    log.warning("watching (%s%s)", mode, ", ".join(s.name for s in sources))
    try:
        watcher.run(flags.stop)
    finally:
        sd.close()
    return 0


# the pipeline, on_tick, on_stop, apply new settings, page a warning (problem text),
# page a warning (title, body)
Built = tuple[
    Pipeline,
    Callable[[], None],
    Callable[[], None],
    Callable[[Settings], None],
    Callable[[str], None],
    Callable[[str, str], None] | None,
]


def _endpoint(
    settings: Settings, metrics: Metrics | None, warn: Callable[[str], None]
) -> MetricsEndpoint | None:
    if metrics is None:
        return None
    cfg = settings.metrics
    endpoint = MetricsEndpoint(
        metrics, cfg.address, cfg.port, allow_remote=cfg.allow_remote, on_failure=warn
    )
    endpoint.ensure()
    return endpoint


def _extra_status(pipeline: Pipeline, settings: Settings) -> dict[str, Any]:
    """The rules' windows, and the switch's state as the latch file has it: a watcher
    restarted while tripped is tripped, whatever its pipeline has seen since."""
    latch = LatchStore(settings.state_dir).read()
    out: dict[str, Any] = {"rules": rule_status(pipeline), "held": len(latch.held)}
    if latch.tripped:
        out["state"] = "tripped"
        out["tripped_rules"] = sorted(
            {t.rule for t in latch.trips} | set(out.get("tripped_rules", ()))
        )
        out["incident"] = latch.incident.id if latch.incident is not None else None
    if latch.unknown:
        out["latch_unknown"] = latch.unknown
    return out


def _dry(
    settings: Settings,
    rules: Sequence[Rule],
    parser: Parser,
    options: RunOptions,
    sd: SystemdNotify,
    metrics: Metrics | None,
) -> Built:
    printer = DryRunPrinter(settings, sys.stdout)
    pipeline = Pipeline.from_settings(
        rules,
        parser,
        settings,
        on_actions=printer,
        on_loss=warn_log_loss,
        on_time_step=warn_time_step,
        on_format=log_format,
        on_blind=warn_blind,
    )

    def apply(new: Settings) -> None:
        printer.responder.settings = new

    return pipeline, lambda: None, lambda: None, apply, lambda _problem: None, None  # logged


def _live(
    settings: Settings,
    rules: Sequence[Rule],
    parser: Parser,
    options: RunOptions,
    sd: SystemdNotify,
    metrics: Metrics | None,
) -> Built:
    from watcher.responders.notify.delivery import Notifier
    from watcher.responders.notify.text import (
        render_blind,
        render_log_loss,
        render_metrics_unavailable,
    )
    from watcher.runtime import switch as killswitch

    notifier = Notifier.from_settings(settings.notify, options.notify_urls)
    for problem in notifier.problems:
        log.warning("notify: %s", problem)
    switch = killswitch.build(settings, notifier, keepalive=sd.watchdog, metrics=metrics)
    current = [notifier]  # replaced on a reload: warnings go through the current one

    def on_loss(ev: LogLoss, where: Where) -> None:
        warn_log_loss(ev, where)
        title, body = render_log_loss(ev.lost, where.text, host=switch.host)
        current[0].send(title, body, "warning")

    def on_blind(h: SourceHeaders) -> None:
        warn_blind(h)
        first = h.blind_first
        since = clock.now().isoformat(timespec="seconds")
        title, body = render_blind(
            h.blind_run,
            h.source,
            first.lineno if first else 0,
            since,
            first.text if first else "",
            first.reason if first else "",
            host=switch.host,
        )
        current[0].send(title, body, "warning")

    pipeline = Pipeline.from_settings(
        rules,
        parser,
        settings,
        on_actions=switch.on_actions,
        on_loss=on_loss,
        on_time_step=warn_time_step,
        on_format=log_format,
        on_blind=on_blind,
    )
    switch.pipeline = pipeline
    switch.tick()  # a latch from before a restart: stay tripped, act no more
    if pipeline.decider.tripped:
        log.error("the switch is TRIPPED (from the state file): run 'stormwatch rearm' to re-arm")
    notifier.start()

    def apply(new: Settings) -> None:
        fresh = Notifier.from_settings(new.notify, options.notify_urls)
        fresh.start()
        current[0].stop(timeout=5)
        current[0] = fresh
        rebuilt = killswitch.build(new, fresh, keepalive=sd.watchdog, metrics=metrics)
        rebuilt.pipeline = pipeline
        pipeline.on_actions = rebuilt.on_actions
        nonlocal switch
        switch = rebuilt

    def on_tick() -> None:
        switch.tick()

    def on_stop() -> None:
        current[0].stop(timeout=10)

    def warn(problem: str) -> None:
        current[0].send(*render_metrics_unavailable(problem, host=switch.host), "warning")

    def page(title: str, body: str) -> None:
        current[0].send(title, body, "warning")

    return pipeline, on_tick, on_stop, apply, warn, page


def _reload(
    reload: Reload | None,
    pipeline: Pipeline,
    apply_settings: Callable[[Settings], None],
    sd: SystemdNotify,
) -> None:
    """SIGHUP: new settings and rules, or the old ones and the reason."""
    if reload is None:
        log.warning("SIGHUP: nothing to reload from")
        return
    sd.reloading()
    try:
        settings, rules = reload()  # validated as at start (runtime/validate.py)
    except Exception as exc:  # ConfigError, RuleError, ValueError: keep running as we are
        log.error("reload refused, still running on the old settings and rules: %s", exc)
        sd.ready()
        return
    pipeline.replace_rules(rules, settings.content_filters, settings.local_domains)
    apply_settings(settings)
    log.warning(
        "reloaded: %d rule(s); windows and latch kept (sources and state_dir change "
        "only on a restart)",
        len(rules),
    )
    sd.ready()
