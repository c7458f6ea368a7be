"""``stormwatch trip``: trip the switch by hand: stop the outflow and the inflow, page."""

from __future__ import annotations

import argparse
import sys

from watcher.cli.common import EXIT_HELP, EXIT_OK, EXIT_TRIPPED, Parents, settings_from
from watcher.core.times import micros
from watcher.responders.dryrun import DryRunResponder
from watcher.state.trust import check_state_dir


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: Parents) -> None:
    p = sub.add_parser(
        "trip",
        parents=[parents.base, parents.notify],
        help="trip the switch by hand: stop the outflow and the inflow, page",
        epilog=EXIT_HELP,
    )
    p.add_argument("--reason", required=True, help="why (goes into the page and the record)")
    p.add_argument("--dry-run", action="store_true", help="print what it would do; change nothing")
    p.add_argument(
        "--freeze",
        action="store_true",
        help="freeze the whole host at once (defer every outbound transport: ALL outbound mail "
        "waits), instead of containing the storm's mail (bounces) and letting the rest flow",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # imported here: the other commands (replay above all) start without apprise and psutil
    from watcher.responders.actions import current_outcomes
    from watcher.responders.killswitch import manual_actions, manual_incident
    from watcher.responders.notify.delivery import Notifier
    from watcher.responders.rearm import ACTING_WAIT_SECONDS
    from watcher.runtime import clock, switch

    settings = settings_from(args)
    check_state_dir(settings.state_dir)
    now = clock.now()
    actions = manual_actions(settings, micros(now), freeze=args.freeze)
    out = sys.stdout
    if args.dry_run:
        dry = DryRunResponder(settings)
        out.write(f"DRY RUN: a manual trip ({args.reason}) would:\n")
        for a in actions:
            for step in dry.describe(a):
                out.write(f"  - {step}\n")
        return EXIT_OK
    notifier = Notifier.from_settings(settings.notify, args.notify)
    the_switch = switch.build(settings, notifier)
    the_switch.runner.wait = ACTING_WAIT_SECONDS  # a running watcher may be acting now
    notifier.start()
    try:
        the_switch.trip(actions, manual_incident(args.reason, now.timestamp()), None)
    finally:
        notifier.stop(timeout=settings.notify.timeout_seconds * 3)
    latch = the_switch.store.read()
    for o in current_outcomes(latch):
        out.write(f"{'ok  ' if o.ok else 'FAIL'} {o.kind}: {o.summary}\n")
    for a in latch.unfinished():
        out.write(f"WAIT {a.kind}: not done yet (another process is carrying out actions)\n")
    the_id = latch.incident.id if latch.incident is not None else "?"
    out.write(f"TRIPPED ({the_id}). Re-arm with: stormwatch rearm [--release-held]\n")
    return EXIT_TRIPPED
