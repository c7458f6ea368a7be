"""The ``stormwatch`` command line. The only module that writes to stdout.

Exit status: 0 no rule tripped (or the command succeeded), 1 a rule tripped,
2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from watcher import __version__
from watcher.core.errors import ConfigError
from watcher.core.parse import Parser
from watcher.core.pipeline import Pipeline, line_at
from watcher.core.rules import Rule
from watcher.core.settings import Settings
from watcher.reports import verdict as report
from watcher.responders.dryrun import DryRunResponder
from watcher.runtime import clock, logsetup
from watcher.runtime.config import DEFAULT_CONFIG, load_settings
from watcher.runtime.rulefiles import LoadedRule, RuleError, bundled_rules_dir, load_rules
from watcher.sources.replay import PARALLEL_MIN_BYTES, ReplayInput, read_range, scan_parallel

EXIT_OK, EXIT_TRIPPED, EXIT_USAGE = 0, 1, 2
PROGRESS_MIN_BYTES = 32 << 20
MAX_WORKERS = 4  # processes scanning a large replay file; the join stays in this one
DEMO_LOG = "demo-incident.log"

log = logging.getLogger("watcher")


class UsageError(ConfigError):
    """Bad arguments or configuration: exit status 2, with this message."""


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"settings file (default {DEFAULT_CONFIG}; if absent, built-in defaults)",
    )
    p.add_argument(
        "--state-dir", type=Path, default=None, help="state directory (default /var/lib/stormwatch)"
    )
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    return p


def _rules_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--rules",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a directory of rule files; overrides bundled rules by name (repeatable)",
    )


def _notify_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--notify",
        action="append",
        default=[],
        metavar="URL",
        help="an apprise URL to page, besides the configured ones (repeatable)",
    )


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    top = argparse.ArgumentParser(
        prog="stormwatch",
        description="A kill switch for Postfix mail storms.",
        epilog="Exit status: 0 no rule tripped, 1 a rule tripped, 2 usage or configuration error.",
    )
    top.add_argument("--version", action="version", version=f"stormwatch {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="replay a bundled incident log through the default rules",
        description="Replays a bundled log shaped like a real incident (a fetchmail-fed "
        "forwarding loop that relayed ~1000 bounces out in 4 minutes) through the "
        "default rules, as a dry run.",
    )
    demo.add_argument("--json", action="store_true", help="machine-readable output")

    replay = sub.add_parser(
        "replay",
        parents=[common],
        help="replay finished logs as a dry run: would a rule have tripped?",
        description="Reads plain or gzip logs (in the order given; '-' for stdin) through "
        "the rules and prints the verdict and the plan. No side effects.",
    )
    replay.add_argument("files", nargs="+", metavar="FILE", help="log files, oldest first")
    _rules_opt(replay)
    replay.add_argument("--json", action="store_true", help="machine-readable output")
    replay.add_argument(
        "--year",
        type=int,
        default=None,
        help="year of the first classic syslog line (default: from the first file's mtime)",
    )
    replay.add_argument(
        "--timezone", default=None, help="IANA zone of year-less timestamps (default: the host's)"
    )
    replay.add_argument("--no-progress", action="store_true", help="no progress bar")

    rep = sub.add_parser(
        "report",
        parents=[common],
        help="the incident report of a finished log (offline)",
        description="Replays logs like 'replay' and writes the incident report of the rule "
        "that tripped (or --rule): Markdown on stdout, and with --out a folder holding "
        "report.md, report.json, timeline.svg and evidence.log.",
    )
    rep.add_argument("files", nargs="+", metavar="FILE", help="log files, oldest first")
    _rules_opt(rep)
    rep.add_argument(
        "--rule", default=None, help="report on this rule (default: the one that tripped)"
    )
    rep.add_argument(
        "--out", type=Path, default=None, metavar="DIR", help="write the report folder"
    )
    rep.add_argument("--json", action="store_true", help="report.json on stdout")
    rep.add_argument("--year", type=int, default=None, help="as for replay")
    rep.add_argument("--timezone", default=None, help="as for replay")
    rep.add_argument("--no-progress", action="store_true", help="no progress bar")

    incs = sub.add_parser(
        "incidents", parents=[common], help="list past incidents; 'incidents show ID' shows one"
    )
    incs.add_argument("show", nargs="?", choices=["show"], help=argparse.SUPPRESS)
    incs.add_argument("id", nargs="?", default=None, metavar="ID")
    incs.add_argument("--json", action="store_true", help="with show: report.json")

    run = sub.add_parser(
        "run",
        parents=[common],
        help="follow the mail log and act when a rule trips",
        description="Follows the mail log (or the journal) through the rules. With "
        "--dry-run the responders print what they would do instead of acting.",
    )
    _rules_opt(run)
    run.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="SPEC",
        help="'file:/var/log/mail.log' or 'journal' (repeatable; default: found on the host)",
    )
    run.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    run.add_argument("--poll", action="store_true", help="poll files instead of inotify")
    _notify_opt(run)

    trip = sub.add_parser(
        "trip",
        parents=[common],
        help="trip the switch by hand: stop the outflow and the inflow, page",
    )
    trip.add_argument("--reason", required=True, help="why (goes into the page and the record)")
    trip.add_argument(
        "--dry-run", action="store_true", help="print what it would do; change nothing"
    )
    _notify_opt(trip)

    rearm = sub.add_parser(
        "rearm",
        parents=[common],
        help="undo what the trip did (Postfix settings), then watch again",
        description="Restores every Postfix value the trip saved, reloads, and clears the "
        "latch. Held mail stays held unless --release-held is given. Nothing is deleted.",
    )
    held = rearm.add_mutually_exclusive_group()
    held.add_argument(
        "--release-held", action="store_true", help="release the mail the trip held, and flush"
    )
    held.add_argument("--keep-held", action="store_true", help="leave it on hold (the default)")
    _notify_opt(rearm)

    test_notify = sub.add_parser(
        "test-notify", parents=[common], help="send a test page through every target"
    )
    _notify_opt(test_notify)

    status = sub.add_parser(
        "status", parents=[common], help="what a running watcher has seen (from its status file)"
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")

    unit = sub.add_parser(
        "install-unit",
        parents=[common],
        help="write the systemd unit (with this host's paths) and a settings file",
    )
    unit.add_argument(
        "--dest", type=Path, default=Path("/etc/systemd/system"), help="where the unit goes"
    )
    unit.add_argument("--bin", default=None, help="the stormwatch program (default: this one)")
    unit.add_argument(
        "--no-config", action="store_true", help="do not write a settings file when there is none"
    )

    check = sub.add_parser(
        "check-config",
        parents=[common],
        help="validate the settings and rules, print the effective ones",
    )
    _rules_opt(check)
    check.add_argument(
        "--quiet", action="store_true", help="print only problems (for ExecStartPre=)"
    )
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logsetup.configure(args.verbose)
    commands: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
        "demo": cmd_demo,
        "replay": cmd_replay,
        "check-config": cmd_check_config,
        "run": cmd_run,
        "status": cmd_status,
        "trip": cmd_trip,
        "rearm": cmd_rearm,
        "test-notify": cmd_test_notify,
        "install-unit": cmd_install_unit,
        "report": cmd_report,
        "incidents": cmd_incidents,
    }
    try:
        return commands[args.command](args, _settings(args))
    except (ConfigError, RuleError, UsageError) as exc:
        journal = logsetup.journal_stream(sys.stderr)
        sys.stderr.write(logsetup.error_line(str(exc), journal=journal))
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK


def _settings(args: argparse.Namespace) -> Settings:
    if args.command == "install-unit" and args.config is not None and not args.config.exists():
        return Settings()  # --config names where to write one
    settings = load_settings(args.config)
    if args.state_dir is not None:
        settings = settings.model_copy(update={"state_dir": str(args.state_dir)})
    return settings


def _load_rules(settings: Settings, extra: Sequence[Path]) -> list[LoadedRule]:
    loaded = load_rules([*settings.rules_dirs, *extra], include_bundled=settings.bundled_rules)
    if not loaded:
        raise UsageError("no rule is enabled: there is nothing to watch for")
    return loaded


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(str(resources.files("watcher.data").joinpath(DEMO_LOG)))
    return _replay(
        [str(path)],
        labels=[f"{DEMO_LOG} (bundled)"],
        settings=settings,
        rules=_load_rules(settings, ()),
        as_json=args.json,
        reference=datetime(2011, 12, 31, tzinfo=UTC),
        tz_name="Asia/Tokyo",  # the incident host's zone: times print as logged
        progress=False,
        out=sys.stdout,
    )


def _reference(year: int | None) -> datetime | None:
    if year is None:
        return None
    if not 1970 <= year <= 9999:
        raise UsageError(f"--year {year}: out of range")
    return datetime(year, 12, 31, 23, 59, 59, tzinfo=UTC)


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    reference = _reference(args.year)
    return _replay(
        args.files,
        settings=settings,
        rules=_load_rules(settings, args.rules),
        as_json=args.json,
        reference=reference,
        tz_name=args.timezone if args.timezone is not None else settings.timezone,
        progress=not args.no_progress,
        out=sys.stdout,
    )


@dataclass(frozen=True, slots=True)
class Replayed:
    pipeline: Pipeline
    inputs: list[report.InputInfo]
    planned: list[Any]
    tz: tzinfo


def _run_replay(
    names: Sequence[str],
    *,
    labels: Sequence[str] | None = None,
    settings: Settings,
    rules: Sequence[LoadedRule],
    reference: datetime | None,
    tz_name: str,
    progress: bool,
) -> Replayed:
    """Feed the inputs through a pipeline whose actions go to the dry-run responder."""
    try:
        tz = clock.zone(tz_name)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    inputs = [ReplayInput(n) for n in names]
    for inp in inputs:
        if not inp.is_stdin and not Path(inp.name).is_file():
            raise UsageError(f"{inp.name}: no such file")
    if reference is None:
        reference = inputs[0].mtime() or clock.now()
    responder = DryRunResponder(settings)
    pipeline = Pipeline.from_settings(
        [r.rule for r in rules],
        Parser(reference=reference, tz=tz),
        settings,
        on_actions=responder,
    )
    infos: list[report.InputInfo] = []
    for inp, label in zip(inputs, labels or names, strict=True):
        lines = _feed(pipeline, inp, label, progress)
        infos.append(report.InputInfo(label, lines))
    return Replayed(pipeline, infos, list(responder.planned), tz)


def _replay(
    names: Sequence[str],
    *,
    labels: Sequence[str] | None = None,
    settings: Settings,
    rules: Sequence[LoadedRule],
    as_json: bool,
    reference: datetime | None,
    tz_name: str,
    progress: bool,
    out: TextIO,
) -> int:
    r = _run_replay(
        names,
        labels=labels,
        settings=settings,
        rules=rules,
        reference=reference,
        tz_name=tz_name,
        progress=progress,
    )
    verdict = report.build(r.pipeline, r.inputs, r.planned, r.tz)
    if as_json:
        out.write(json.dumps(verdict, indent=2, ensure_ascii=False) + "\n")
    else:
        out.write(report.render_text(verdict))
    return EXIT_TRIPPED if verdict["tripped"] else EXIT_OK


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from watcher.reports import incident

    r = _run_replay(
        args.files,
        settings=settings,
        rules=_load_rules(settings, args.rules),
        reference=_reference(args.year),
        tz_name=args.timezone if args.timezone is not None else settings.timezone,
        progress=not args.no_progress,
    )
    rule = args.rule or incident.tripping_rule(r.pipeline)
    if rule is None:
        sys.stdout.write("No rule tripped: nothing to report (name one with --rule).\n")
        return EXIT_OK
    try:
        data = incident.incident_data_from_replay(
            r.pipeline, rule, r.tz, config_directory=settings.postfix.config_directory
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if args.out is not None:
        try:
            written = incident.write_incident(args.out, data)
        except OSError as exc:
            raise UsageError(f"{args.out}: {exc.strerror or exc}") from exc
        for path in written:
            sys.stderr.write(f"wrote {path}\n")
    if args.json:
        sys.stdout.write(
            json.dumps(incident.render_json(data), indent=2, ensure_ascii=False) + "\n"
        )
    else:
        sys.stdout.write(incident.render_markdown(data))
    return EXIT_TRIPPED if data.trip is not None else EXIT_OK


def _write_incident(data: Any, as_json: bool) -> None:
    from watcher.reports import incident

    if as_json:
        text = json.dumps(incident.render_json(data), indent=2, ensure_ascii=False) + "\n"
    else:
        text = incident.render_markdown(data)
    sys.stdout.write(text)


def cmd_incidents(args: argparse.Namespace, settings: Settings) -> int:
    from watcher.reports import incident

    folder = Path(settings.state_dir) / "incidents"
    if args.id is None:
        found = incident.list_incidents(folder)
        if not found:
            sys.stdout.write(f"no incidents in {folder}\n")
        for path, data, reason in found:
            if data is None:
                sys.stdout.write(f"{path.name}  (unreadable: {reason})\n")
                continue
            when = data.trip.time if data.trip is not None else "-"
            sys.stdout.write(
                f"{path.name}  {data.rule}  tripped {when}  {data.matches_total:,} matched  "
                f"{len(data.held)} held\n"
            )
        return EXIT_OK
    if "/" in args.id or args.id in (".", "..") or not args.id.strip():
        raise UsageError(f"incidents show {args.id!r}: not an incident ID")
    path = folder / args.id
    try:
        data = incident.load_incident(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: {exc}") from exc
    if args.json:
        sys.stdout.write(
            json.dumps(incident.render_json(data), indent=2, ensure_ascii=False) + "\n"
        )
    else:
        sys.stdout.write(incident.render_markdown(data))
    return EXIT_OK


def _feed(pipeline: Pipeline, inp: ReplayInput, label: str, progress: bool) -> int:
    """Run one input through the pipeline; return its line count."""
    try:
        inp.open()
    except OSError as exc:
        raise UsageError(f"{inp.name}: cannot open: {exc.strerror or exc}") from exc
    bar: Any = None
    size = inp.size()
    if progress and size is not None and size >= PROGRESS_MIN_BYTES and sys.stderr.isatty():
        from tqdm import tqdm  # only on a terminal: keeps replay's memory small

        bar = tqdm(total=size, unit="B", unit_scale=True, desc=Path(inp.name).name, leave=False)

    def tick() -> None:
        if bar is not None:
            bar.update(inp.consumed() - bar.n)

    lineno = 1
    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    try:
        if (
            workers > 1
            and not inp.is_stdin
            and not inp.is_gzip
            and (size or 0) >= PARALLEL_MIN_BYTES
        ):
            lineno += _feed_parallel(pipeline, inp.name, label, workers, bar)
        else:
            for block in inp.blocks(on_block=tick):
                lineno += pipeline.run_text(block, label, lineno)
    except (OSError, EOFError) as exc:
        raise UsageError(f"{inp.name}: read error after line {lineno - 1}: {exc}") from exc
    finally:
        inp.close()
        if bar is not None:
            bar.close()
    return lineno - 1


def _feed_parallel(pipeline: Pipeline, path: str, label: str, workers: int, bar: Any) -> int:
    """Scan a large plain file in worker processes; join and decide here, in order."""
    lineno = 1
    cached: dict[int, str] = {}
    for start, end, scanned in scan_parallel(path, workers, pipeline.detector.collapsible):

        def fetch(pos: int, start: int = start, end: int = end) -> tuple[str, int]:
            if start not in cached:  # a delivery the scanner left out: read its block again
                cached.clear()
                cached[start] = read_range(path, start, end)
            return line_at(cached[start], pos)

        pipeline.apply(scanned, label, lineno, fetch)
        lineno += scanned[0]
        if bar is not None:
            bar.update(end - bar.n)
    return lineno - 1


def cmd_check_config(args: argparse.Namespace, settings: Settings) -> int:
    from watcher.responders.command import validate_argv
    from watcher.responders.notify import check_targets

    rules = _load_rules(settings, args.rules)
    _check_zone(settings)
    errors = validate_argv(settings.command.argv)
    if errors:
        raise UsageError("[command] argv: " + "; ".join(errors))
    warnings = [
        f"notify: {w}" for w in check_targets(settings.notify.urls, settings.notify.config_file)
    ]
    if any("command" in r.rule.actions for r in rules) and not settings.command.argv:
        warnings.append("a rule asks for the command action, but [command] argv is empty")
    src = args.config or (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    w = sys.stdout.write
    if args.quiet:
        for warning in warnings:
            w(f"WARNING: {warning}\n")
        return EXIT_OK
    w(f"settings: {src or 'built-in defaults (no settings file)'}\n")
    for key, value in settings.model_dump(mode="json").items():
        w(f"  {key} = {json.dumps(value)}\n")
    w(f"rules ({len(rules)} enabled; bundled from {bundled_rules_dir()}):\n")
    for lr in rules:
        r = lr.rule
        thresholds = ", ".join(
            f"{k}={v}" for k, v in (("warn_at", r.warn_at), ("trip_at", r.trip_at)) if v
        )
        w(
            f"  {r.name}: {r.match.event}, {thresholds} in {r.window.seconds:g} s, "
            f"actions {', '.join(r.actions)}  [{lr.path}]\n"
        )
    for warning in warnings:
        w(f"WARNING: {warning}\n")
    w("OK\n")
    return EXIT_OK


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from watcher.runtime import service
    from watcher.sources.choose import SourceError, build_source, default_source

    rules = _load_rules(settings, args.rules)
    _check_zone(settings)
    specs = list(args.source)
    if not specs:
        spec, why = default_source(settings.postfix.config_directory)
        log.warning("following %s (%s)", spec, why)
        specs = [spec]
    try:
        sources = [build_source(spec, settings.state_dir, poll=args.poll) for spec in specs]
    except SourceError as exc:
        raise UsageError(str(exc)) from exc
    options = service.RunOptions(dry_run=args.dry_run, notify_urls=tuple(args.notify))

    def reload() -> tuple[Settings, list[Rule]]:
        fresh = _settings(args)
        return fresh, [r.rule for r in _load_rules(fresh, args.rules)]

    try:
        return service.run(settings, [r.rule for r in rules], sources, options, reload=reload)
    except OSError as exc:
        raise UsageError(f"{exc.filename or 'state'}: {exc.strerror or exc}") from exc


def _check_zone(settings: Settings) -> None:
    try:
        clock.zone(settings.timezone)
    except ValueError as exc:
        raise UsageError(f"timezone: {exc}") from exc


def cmd_trip(args: argparse.Namespace, settings: Settings) -> int:
    from watcher.responders import killswitch
    from watcher.responders.base import Incident

    now = clock.now()
    actions = killswitch.manual_actions(settings, args.reason, int(now.timestamp() * 1_000_000))
    stamp = now.isoformat(timespec="seconds")
    incident = Incident(
        id=killswitch.incident_id(now.timestamp(), killswitch.MANUAL),
        rule=killswitch.MANUAL,
        description=args.reason,
        count=0,
        threshold=0,
        window_seconds=0.0,
        first_time=stamp,
        trip_time=stamp,
        trip_line=f"manual trip: {args.reason}",
    )
    out = sys.stdout
    if args.dry_run:
        dry = DryRunResponder(settings)
        out.write(f"DRY RUN: a manual trip ({args.reason}) would:\n")
        for a in actions:
            for step in dry.describe(a):
                out.write(f"  - {step}\n")
        return EXIT_OK
    from watcher.responders.notify import Notifier

    notifier = Notifier.from_settings(settings.notify, args.notify)
    switch = killswitch.build(settings, notifier)
    notifier.start()
    try:
        switch.trip(actions, incident, None)
    finally:
        notifier.stop(timeout=settings.notify.timeout_seconds * 3)
    latch = switch.store.read()
    for a in latch.get("actions", ()):
        out.write(f"{'ok  ' if a['ok'] else 'FAIL'} {a['kind']}: {a['summary']}\n")
    incident_id = latch["incident"]["id"]
    out.write(f"TRIPPED ({incident_id}). Re-arm with: stormwatch rearm [--release-held]\n")
    return EXIT_TRIPPED


def cmd_rearm(args: argparse.Namespace, settings: Settings) -> int:
    from watcher.responders import killswitch
    from watcher.responders.notify import Notifier, render_all_clear
    from watcher.responders.postfix import PostfixControl, PostfixError
    from watcher.state.files import StateError

    store = killswitch.LatchStore(settings.state_dir)
    control = PostfixControl(settings.postfix.config_directory)
    try:
        was, steps, incident, released, still = killswitch.rearm(
            store, control, release=args.release_held
        )
    except StateError as exc:
        raise UsageError(f"refusing to re-arm: the state is unreadable: {exc}") from exc
    except (PostfixError, OSError) as exc:
        sys.stderr.write(f"stormwatch: re-arm failed, the switch stays tripped: {exc}\n")
        return EXIT_USAGE
    for step in steps:
        sys.stdout.write(f"{step}\n")
    if was and incident is not None:
        notifier = Notifier.from_settings(settings.notify, args.notify)
        title, body = render_all_clear(incident, released, still)
        for url, ok, error in notifier.send_now(title, body, "success"):
            if not ok:
                log.warning("all-clear to %s failed: %s", url, error)
    return EXIT_OK


def cmd_test_notify(args: argparse.Namespace, settings: Settings) -> int:
    from watcher.responders.notify import Notifier

    notifier = Notifier.from_settings(settings.notify, args.notify)
    for problem in notifier.problems:
        sys.stderr.write(f"stormwatch: {problem}\n")
    if not notifier.target_count():
        raise UsageError("no notification target: set [notify] urls or pass --notify URL")
    results = notifier.send_now(
        "stormwatch test page", "This is a test page from stormwatch: the route works.", "info"
    )
    for url, ok, error in results:
        sys.stdout.write(f"{'ok  ' if ok else 'FAIL'} {url}{'' if ok else ': ' + error}\n")
    return EXIT_OK if all(ok for _, ok, _ in results) else EXIT_TRIPPED


def cmd_install_unit(args: argparse.Namespace, settings: Settings) -> int:
    from watcher.responders.postfix import PostfixControl, PostfixError
    from watcher.runtime import install

    try:
        queue_dir = PostfixControl(settings.postfix.config_directory).param("queue_directory")
    except PostfixError as exc:
        log.warning("cannot ask Postfix for its queue_directory (%s): using the default", exc)
        queue_dir = "/var/spool/postfix"
    config = args.config or DEFAULT_CONFIG
    try:
        done = install.install(
            settings,
            queue_dir,
            dest=args.dest,
            program=args.bin,
            config=config,
            write_config=not args.no_config,
        )
    except OSError as exc:
        raise UsageError(f"install-unit: {exc}") from exc
    for line in done:
        sys.stdout.write(line + "\n")
    return EXIT_OK


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from watcher.runtime.daemon import STATUS_FILE
    from watcher.state.files import StateError, read_json

    path = Path(settings.state_dir) / STATUS_FILE
    try:
        status = read_json(path)
    except StateError as exc:
        raise UsageError(str(exc)) from exc
    if not isinstance(status, dict):
        raise UsageError(f"{path}: no status: is a watcher running with this state directory?")
    if args.json:
        sys.stdout.write(json.dumps(status, indent=2) + "\n")
        return EXIT_OK
    w = sys.stdout.write
    state = str(status.get("state", "?")).upper()
    w(f"{state}  (pid {status.get('pid')}, updated {status.get('updated')})\n")
    if status.get("tripped_rules"):
        w(f"  tripped rules: {', '.join(status['tripped_rules'])}\n")
    for key in (
        "lines",
        "lines_per_second",
        "events",
        "unparsed",
        "last_event_time",
        "queue_depth",
    ):
        w(f"  {key.replace('_', ' ')}: {status.get(key)}\n")
    loss = status.get("log_loss") or {}
    if loss.get("reports"):
        lost, reports = loss["lines_lost"], loss["reports"]
        w(f"  WARNING: {lost} lines lost to rate limiting ({reports} reports): partly blind\n")
    for name, counters in (status.get("sources") or {}).items():
        w(f"  {name}:\n")
        for k, v in counters.items():
            w(f"    {k.replace('_', ' ')}: {v}\n")
    return EXIT_OK
