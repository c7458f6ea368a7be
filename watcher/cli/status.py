"""``stormwatch status``: what a running watcher has seen (from its status file)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from watcher.cli.common import EXIT_HELP, EXIT_OK, Parents, UsageError, settings_from
from watcher.runtime.daemon import STATUS_FILE
from watcher.state.files import read_json

SHOWN = ("lines", "lines_per_second", "events", "unparsed", "last_event_time", "queue_depth")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: Parents) -> None:
    p = sub.add_parser(
        "status",
        parents=[parents.base],
        help="what a running watcher has seen (from its status file)",
        epilog=EXIT_HELP,
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    path = Path(settings.state_dir) / STATUS_FILE
    status = read_json(path)
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
    for key in SHOWN:
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
