"""What settings and rules must satisfy beyond their schema: one check for
``check-config``, for ``run`` at start, and for a SIGHUP reload.

:func:`check` raises :class:`~watcher.core.errors.ConfigError` naming every
problem (a setting that would make ``run`` fail later, or act wrongly);
:func:`warnings` lists what is allowed but probably not meant.
"""

from __future__ import annotations

from collections.abc import Sequence

from watcher.core.errors import ConfigError
from watcher.core.rules import Rule
from watcher.core.settings import Settings
from watcher.fleet.store import FleetConfigError, read_password
from watcher.responders.command import validate_argv
from watcher.responders.notify.targets import check_targets
from watcher.runtime import clock
from watcher.runtime.metrics import is_loopback


def problems(settings: Settings) -> list[str]:
    """Every reason these settings cannot be run with ([] when they can)."""
    out: list[str] = []
    try:
        clock.zone(settings.timezone)
    except ValueError as exc:
        out.append(f"timezone: {exc}")
    out += [f"[command] {e}" for e in validate_argv(settings.command.argv)]
    m = settings.metrics
    if m.enabled and not m.allow_remote and not is_loopback(m.address):
        out.append(
            f"[metrics] address {m.address!r} is not loopback: metrics name rules and log "
            "sources; set allow_remote = true (and put a firewall in front) to serve them "
            "to the network"
        )
    if settings.fleet.url and settings.fleet.password_file:
        try:
            read_password(settings.fleet.password_file)
        except FleetConfigError as exc:
            out.append(f"[fleet] {exc}")
    return out


def check(settings: Settings) -> None:
    """ConfigError listing every problem, if there is one."""
    found = problems(settings)
    if found:
        raise ConfigError("\n".join(found))


def warnings(
    settings: Settings, rules: Sequence[Rule], extra_urls: Sequence[str] = ()
) -> list[str]:
    """What check-config warns about: page targets, actions without what they need."""
    out = [
        f"notify: {w}"
        for w in check_targets((*settings.notify.urls, *extra_urls), settings.notify.config_file)
    ]
    if any("command" in r.actions for r in rules) and not settings.command.argv:
        out.append("a rule asks for the command action, but [command] argv is empty")
    shared = [r.name for r in rules if r.shared]
    if shared and not settings.fleet.url:
        out.append(f"rule(s) {', '.join(shared)} are shared, but [fleet] url is empty")
    return out
