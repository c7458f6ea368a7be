"""``stormwatch report FILE...``: the incident report of a finished log, offline."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from watcher.cli.common import (
    EXIT_HELP,
    EXIT_OK,
    EXIT_TRIPPED,
    Parents,
    UsageError,
    reference_of,
    rules_from,
    settings_from,
)
from watcher.reports import build, codec, markdown
from watcher.reports.model import IncidentReport


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: Parents) -> None:
    p = sub.add_parser(
        "report",
        parents=[parents.base, parents.rules, parents.log_time],
        help="the incident report of a finished log (offline)",
        description="Replays logs like 'replay' and writes the incident report of the rule "
        "that tripped (or --rule): Markdown on stdout, and with --out a folder holding "
        "report.md, report.json, timeline.svg and evidence.log.",
        epilog=EXIT_HELP,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="log files, oldest first")
    p.add_argument(
        "--rule", default=None, help="report on this rule (default: the one that tripped)"
    )
    p.add_argument("--out", type=Path, default=None, metavar="DIR", help="write the report folder")
    p.add_argument("--json", action="store_true", help="report.json on stdout")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # imported here: replay starts without what it does not use
    from watcher.reports.store import write_incident
    from watcher.runtime.replay import replay

    settings = settings_from(args)
    r = replay(
        args.files,
        settings=settings,
        rules=[lr.rule for lr in rules_from(settings, args.rules)],
        reference=reference_of(args.year),
        tz_name=args.timezone if args.timezone is not None else settings.timezone,
        progress=not args.no_progress,
    )
    rule = args.rule or build.tripping_rule(r.pipeline)
    if rule is None:
        sys.stdout.write("No rule tripped: nothing to report (name one with --rule).\n")
        return EXIT_OK
    try:
        report = build.from_pipeline(
            r.pipeline, rule, r.tz, config_directory=settings.postfix.config_directory
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if args.out is not None:
        try:
            written = write_incident(args.out, report)
        except OSError as exc:
            raise UsageError(f"{args.out}: {exc.strerror or exc}") from exc
        for path in written:
            sys.stderr.write(f"wrote {path}\n")
    write_report(report, args.json)
    return EXIT_TRIPPED if report.incident.trip is not None else EXIT_OK


def write_report(report: IncidentReport, as_json: bool) -> None:
    """A report on stdout: report.json with ``as_json``, else report.md."""
    if as_json:
        sys.stdout.write(json.dumps(codec.to_json(report), indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(markdown.render_markdown(report))
