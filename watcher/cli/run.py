"""``stormwatch run``: follow the mail log (or the journal) and act when a rule trips."""

from __future__ import annotations

import argparse
import logging

from watcher.cli.common import EXIT_HELP, Parents, rules_from, settings_from
from watcher.core.errors import StormwatchError
from watcher.core.rules import Rule
from watcher.core.settings import Settings

log = logging.getLogger("watcher")


class StartError(StormwatchError):
    """``run`` could not start for a reason outside the configuration (exit status 3)."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: Parents) -> None:
    p = sub.add_parser(
        "run",
        parents=[parents.base, parents.rules, parents.notify],
        help="follow the mail log and act when a rule trips",
        description="Follows the mail log (or the journal) through the rules. With "
        "--dry-run the responders print what they would do instead of acting.",
        epilog=EXIT_HELP,
    )
    p.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="SPEC",
        help="'file:/var/log/mail.log' or 'journal' (repeatable; default: found on the host)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    p.add_argument("--poll", action="store_true", help="poll files instead of inotify")
    p.set_defaults(handler=run)


def _maillog_file(config_directory: str) -> str:
    from watcher.responders.postfix import PostfixControl, PostfixError

    try:
        return PostfixControl(config_directory).param("maillog_file")
    except PostfixError:
        return ""


def run(args: argparse.Namespace) -> int:
    # imported here: the other commands (replay above all) start without apprise and psutil
    from watcher.runtime import service, validate
    from watcher.sources.choose import build_source, default_source

    settings = settings_from(args)
    rules = rules_from(settings, args.rules)
    validate.check(settings)
    specs = list(args.source)
    if not specs:
        cfg = settings.postfix.config_directory
        spec, why = default_source(lambda: _maillog_file(cfg))
        log.warning("following %s (%s)", spec, why)
        specs = [spec]
    sources = [build_source(spec, settings.state_dir, poll=args.poll) for spec in specs]
    options = service.RunOptions(dry_run=args.dry_run, notify_urls=tuple(args.notify))

    def reload() -> tuple[Settings, list[Rule]]:
        fresh = settings_from(args)
        found = [r.rule for r in rules_from(fresh, args.rules)]
        validate.check(fresh)
        return fresh, found

    try:
        return service.run(settings, [r.rule for r in rules], sources, options, reload=reload)
    except OSError as exc:
        raise StartError(f"{exc.filename or 'state'}: {exc.strerror or exc}") from exc
