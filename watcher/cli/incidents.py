"""``stormwatch incidents [list]``, ``incidents show ID``, ``incidents ID``: past incidents."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from watcher.cli.common import EXIT_HELP, EXIT_OK, Parents, UsageError, settings_from
from watcher.cli.report import write_report

USAGE = "stormwatch incidents [list | show ID | ID] [--json] [options]"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: Parents) -> None:
    p = sub.add_parser(
        "incidents",
        parents=[parents.base],
        usage=USAGE,
        help="list past incidents; 'incidents show ID' (or 'incidents ID') shows one",
        description="Lists the incident folders under <state_dir>/incidents, newest first; "
        "'show ID' (or just the ID) prints that incident's report.",
        epilog=EXIT_HELP,
    )
    p.add_argument("words", nargs="*", metavar="list|show ID|ID", help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help="with show: report.json")
    p.set_defaults(handler=run)


def _wanted(words: list[str]) -> str | None:
    """The incident ID asked for, or None for the list."""
    if not words or words == ["list"]:
        return None
    if words[0] == "show" and len(words) == 2:
        return words[1]
    if len(words) == 1 and words[0] != "show":
        return words[0]
    raise UsageError(f"incidents {' '.join(words)}: usage: {USAGE}")


def run(args: argparse.Namespace) -> int:
    # imported here: replay starts without what it does not use
    from watcher.reports.store import list_incidents, load_incident

    settings = settings_from(args)
    folder = Path(settings.state_dir) / "incidents"
    wanted = _wanted(args.words)
    if wanted is None:
        found = list_incidents(folder)
        if not found:
            sys.stdout.write(f"no incidents in {folder}\n")
        for path, report, reason in found:
            if report is None:
                sys.stdout.write(f"{path.name}  (unreadable: {reason})\n")
                continue
            trip = report.incident.trip
            when = trip.time if trip is not None else "-"
            sys.stdout.write(
                f"{path.name}  {report.incident.rule}  tripped {when}  "
                f"{report.matches_total:,} matched  {len(report.held)} held\n"
            )
        return EXIT_OK
    if "/" in wanted or wanted in (".", "..") or not wanted.strip():
        raise UsageError(f"incidents show {wanted!r}: not an incident ID")
    path = folder / wanted
    try:
        report = load_incident(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: {exc}") from exc
    write_report(report, args.json)
    return EXIT_OK
