"""``stormwatch rearm``: undo what the trip did, then watch again."""

from __future__ import annotations

import argparse
import logging
import sys

from watcher.cli.common import EXIT_HELP, EXIT_OK, Parents, settings_from
from watcher.state.trust import check_state_dir

log = logging.getLogger("watcher")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: Parents) -> None:
    p = sub.add_parser(
        "rearm",
        parents=[parents.base, parents.notify],
        help="undo what the trip did (Postfix settings), then watch again",
        description="Restores every Postfix value the trip saved, reloads, checks that "
        "postconf -n shows the saved values, and clears the latch. Held mail stays held "
        "unless --release-held is given. Nothing is deleted. Exit status 3 when Postfix "
        "could not be put back (the switch stays tripped).",
        epilog=EXIT_HELP,
    )
    held = p.add_mutually_exclusive_group()
    held.add_argument(
        "--release-held", action="store_true", help="release the mail the trip held, and flush"
    )
    held.add_argument("--keep-held", action="store_true", help="leave it on hold (the default)")
    p.add_argument(
        "--offender",
        default="",
        metavar="GROUP=KEY",
        help="lift only the block of this contained offender (sasl-user=bob, uid=33, "
        "client=192.0.2.7); when the incident changed nothing else, the same as a full re-arm",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="clear a latch that cannot be read (after checking Postfix by hand: rearm shows "
        "what it found and refuses without this)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # imported here: the other commands (replay above all) start without apprise and psutil
    from watcher.responders.latchstore import LatchStore
    from watcher.responders.notify.delivery import Notifier
    from watcher.responders.notify.text import render_all_clear
    from watcher.responders.postfix import PostfixControl
    from watcher.responders.rearm import RearmError, rearm

    settings = settings_from(args)
    check_state_dir(settings.state_dir)
    store = LatchStore(settings.state_dir)
    control = PostfixControl(settings.postfix.config_directory)
    try:
        done = rearm(
            store, control, release=args.release_held, force=args.force, offender=args.offender
        )
    except OSError as exc:
        raise RearmError(f"re-arm failed, the switch stays tripped: {exc}") from exc
    for step in done.steps:
        sys.stdout.write(f"{step}\n")
    if done.was_tripped and done.cleared and done.incident is not None:
        notifier = Notifier.from_settings(settings.notify, args.notify)
        title, body = render_all_clear(done.incident, done.released, done.still_held)
        for url, ok, error in notifier.send_now(title, body, "success"):
            if not ok:
                log.warning("all-clear to %s failed: %s", url, error)
    return EXIT_OK
