"""``stormwatch test-notify``: send a test page through every target."""

from __future__ import annotations

import argparse
import sys

from watcher.cli.common import EXIT_FAILURE, EXIT_HELP, EXIT_OK, Parents, UsageError, settings_from


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: Parents) -> None:
    p = sub.add_parser(
        "test-notify",
        parents=[parents.base, parents.notify],
        help="send a test page through every target",
        description="Sends one test page to every target and waits for each. Exit status 3 "
        "when a target could not be reached.",
        epilog=EXIT_HELP,
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # imported here: the other commands (replay above all) start without apprise and psutil
    from watcher.responders.notify.delivery import Notifier

    settings = settings_from(args)
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
    return EXIT_OK if all(ok for _, ok, _ in results) else EXIT_FAILURE
