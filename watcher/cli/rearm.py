"""``stormwatch rearm``: undo what the trip did, then watch again."""

from __future__ import annotations

import argparse
import logging
import sys

from watcher.cli.common import EXIT_HELP, EXIT_OK, Parents, settings_from
from watcher.core.errors import StormwatchError
from watcher.state.files import StateError

log = logging.getLogger("watcher")


class RearmFailed(StormwatchError):
    """Nothing, or not everything, was undone: the switch stays tripped (exit status 3)."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: Parents) -> None:
    p = sub.add_parser(
        "rearm",
        parents=[parents.base, parents.notify],
        help="undo what the trip did (Postfix settings), then watch again",
        description="Restores every Postfix value the trip saved, reloads, and clears the "
        "latch. Held mail stays held unless --release-held is given. Nothing is deleted.",
        epilog=EXIT_HELP,
    )
    held = p.add_mutually_exclusive_group()
    held.add_argument(
        "--release-held", action="store_true", help="release the mail the trip held, and flush"
    )
    held.add_argument("--keep-held", action="store_true", help="leave it on hold (the default)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # imported here: the other commands (replay above all) start without apprise and psutil
    from watcher.responders.latchstore import LatchStore
    from watcher.responders.notify.delivery import Notifier
    from watcher.responders.notify.text import render_all_clear
    from watcher.responders.postfix import PostfixControl, PostfixError
    from watcher.responders.rearm import rearm

    settings = settings_from(args)
    store = LatchStore(settings.state_dir)
    control = PostfixControl(settings.postfix.config_directory)
    try:
        done = rearm(store, control, release=args.release_held)
    except StateError as exc:
        raise RearmFailed(f"refusing to re-arm: the state is unreadable: {exc}") from exc
    except (PostfixError, OSError) as exc:
        raise RearmFailed(f"re-arm failed, the switch stays tripped: {exc}") from exc
    for step in done.steps:
        sys.stdout.write(f"{step}\n")
    if done.was_tripped and done.incident is not None:
        notifier = Notifier.from_settings(settings.notify, args.notify)
        title, body = render_all_clear(done.incident, done.released, done.still_held)
        for url, ok, error in notifier.send_now(title, body, "success"):
            if not ok:
                log.warning("all-clear to %s failed: %s", url, error)
    return EXIT_OK
