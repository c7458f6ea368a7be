"""``stormwatch run``: follow the mail log (or the journal) and act when a rule trips."""

from __future__ import annotations

import argparse
import logging
import pwd

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


def chosen_sources(given: list[str], config_directory: str) -> tuple[list[str], str]:
    """The source specs to follow, and why when found on the host ("" when given)."""
    from watcher.sources.choose import default_source

    if given:
        return list(given), ""
    spec, why = default_source(lambda: _maillog_file(config_directory))
    return [spec], why


def source_warnings(specs: list[str], config_directory: str) -> list[str]:
    """For run's start-up log and check-config: sources a local user can write to."""
    from watcher.sources.choose import forgeable

    files = any(s.startswith("file:") for s in specs)
    maillog = _maillog_file(config_directory) if files else ""
    return [p for p in (forgeable(spec, maillog) for spec in specs) if p is not None]


def _postfix_uids(config_directory: str) -> frozenset[int]:
    """Root and Postfix's mail_owner: the uids whose journal entries are Postfix's."""
    from watcher.responders.postfix import PostfixControl, PostfixError

    try:
        owner = PostfixControl(config_directory).param("mail_owner")
    except PostfixError as exc:
        owner = "postfix"
        log.warning("journal: cannot ask Postfix for mail_owner (%s); assuming %r", exc, owner)
    try:
        uid = pwd.getpwnam(owner).pw_uid
    except KeyError:
        log.error("journal: mail_owner %r is not a user: only root's entries are read", owner)
        return frozenset({0})
    return frozenset({0, uid})


def with_postfix_domains(settings: Settings) -> Settings:
    """``local_domains`` plus Postfix's own mydestination and virtual_mailbox_domains
    (plain domain names only: table lookups are not expanded)."""
    from watcher.responders.postfix import PostfixControl, PostfixError

    control = PostfixControl(settings.postfix.config_directory)
    found: list[str] = []
    for name in ("mydestination", "virtual_mailbox_domains"):
        try:
            value = control.expanded(name)
        except PostfixError as exc:
            log.warning("local domains: cannot ask Postfix for %s: %s", name, exc)
            continue
        found += [d for d in value.replace(",", " ").split() if ":" not in d and "/" not in d]
    if not found:
        return settings
    merged = tuple(dict.fromkeys((*settings.local_domains, *found)))
    return settings.model_copy(update={"local_domains": merged})


def run(args: argparse.Namespace) -> int:
    # imported here: the other commands (replay above all) start without apprise and psutil
    from watcher.runtime import service, validate
    from watcher.sources.choose import build_source

    settings = with_postfix_domains(settings_from(args))
    rules = rules_from(settings, args.rules)
    validate.check(settings)
    cfg = settings.postfix.config_directory
    specs, why = chosen_sources(args.source, cfg)
    if why:
        log.warning("following %s (%s)", specs[0], why)
    for problem in source_warnings(specs, cfg):
        log.warning("%s", problem)
    uids = _postfix_uids(cfg) if "journal" in specs else None
    sources = [
        build_source(spec, settings.state_dir, poll=args.poll, trusted_uids=uids) for spec in specs
    ]
    options = service.RunOptions(dry_run=args.dry_run, notify_urls=tuple(args.notify))

    def reload() -> tuple[Settings, list[Rule]]:
        fresh = with_postfix_domains(settings_from(args))
        found = [r.rule for r in rules_from(fresh, args.rules)]
        validate.check(fresh)
        return fresh, found

    try:
        return service.run(settings, [r.rule for r in rules], sources, options, reload=reload)
    except OSError as exc:
        raise StartError(f"{exc.filename or 'state'}: {exc.strerror or exc}") from exc
