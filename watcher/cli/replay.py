"""``stormwatch replay`` and ``stormwatch demo``: would a rule have tripped on this log?"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TextIO

from watcher.cli.common import (
    EXIT_BLIND,
    EXIT_HELP,
    EXIT_OK,
    EXIT_TRIPPED,
    Parents,
    reference_of,
    rules_from,
)
from watcher.cli.common import settings_from as load
from watcher.reports import verdict
from watcher.runtime.replay import replay

DEMO_LOG = "demo-incident.log"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: Parents) -> None:
    demo = sub.add_parser(
        "demo",
        parents=[parents.base],
        help="replay a bundled incident log through the default rules",
        description="Replays a bundled log shaped like a real incident (a fetchmail-fed "
        "forwarding loop that relayed ~1000 bounces out in 4 minutes) through the "
        "default rules, as a dry run.",
        epilog=EXIT_HELP,
    )
    demo.add_argument("--json", action="store_true", help="machine-readable output")
    demo.set_defaults(handler=run_demo)

    p = sub.add_parser(
        "replay",
        parents=[parents.base, parents.rules, parents.log_time],
        help="replay finished logs as a dry run: would a rule have tripped?",
        description="Reads plain or gzip logs (in the order given; '-' for stdin) through "
        "the rules and prints the verdict and the plan. No side effects.",
        epilog=EXIT_HELP,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="log files, oldest first")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=run_replay)


def run_demo(args: argparse.Namespace) -> int:
    settings = load(args)
    path = Path(str(resources.files("watcher.data").joinpath(DEMO_LOG)))
    r = replay(
        [str(path)],
        labels=[f"{DEMO_LOG} (bundled)"],
        settings=settings,
        rules=[lr.rule for lr in rules_from(settings)],
        reference=datetime(2011, 12, 31, tzinfo=UTC),
        tz_name="Asia/Tokyo",  # the incident host's zone: times print as logged
        progress=False,
    )
    return _print(verdict.build(r.pipeline, r.inputs, r.planned, r.tz), args.json, sys.stdout)


def run_replay(args: argparse.Namespace) -> int:
    settings = load(args)
    r = replay(
        args.files,
        settings=settings,
        rules=[lr.rule for lr in rules_from(settings, args.rules)],
        reference=reference_of(args.year),
        tz_name=args.timezone if args.timezone is not None else settings.timezone,
        progress=not args.no_progress,
    )
    return _print(verdict.build(r.pipeline, r.inputs, r.planned, r.tz), args.json, sys.stdout)


def _print(v: dict[str, object], as_json: bool, out: TextIO) -> int:
    if as_json:
        out.write(json.dumps(v, indent=2, ensure_ascii=False) + "\n")
    else:
        out.write(verdict.render_text(v))
    if v["tripped"]:
        return EXIT_TRIPPED
    return EXIT_BLIND if v["blind"] else EXIT_OK
