"""What every command shares: exit statuses, parent parsers, settings and rules.

Exit status, for every command:

* 0: no rule tripped, or the command did what it was asked;
* 1: a rule tripped (``replay``, ``report``, ``demo``), or the switch is tripped (``trip``);
* 2: refused at start: usage, settings or rules are wrong (nothing was done);
* 3: could not complete: a runtime failure (a state file, a Postfix command, a page
  that could not be sent, a start that failed for a reason outside the configuration).

The systemd unit does not restart on 2 (``RestartPreventExitStatus=2``) and does on 3.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from watcher.core.errors import ConfigError
from watcher.core.settings import DEFAULT_STATE_DIR, Settings
from watcher.runtime.config import DEFAULT_CONFIG, load_settings
from watcher.runtime.rulefiles import LoadedRule, load_rules

EXIT_OK, EXIT_TRIPPED, EXIT_CONFIG, EXIT_FAILURE = 0, 1, 2, 3
# replay read to the end, no rule tripped, but a large share of the Postfix-looking lines had
# a header it could not read: "no trip" means nothing. Not 1 (a trip is a finding, and wins
# when both hold), not 2/3 (those say the command did not do its job at all).
EXIT_BLIND = 4

EXIT_HELP = (
    "Exit status: 0 no rule tripped (or done), 1 a rule tripped (or the switch is tripped),"
    " 2 refused at start (usage, settings or rules), 3 runtime failure, 4 (replay) no rule"
    " tripped but many Postfix lines were in a header format it cannot read."
)


class UsageError(ConfigError):
    """Bad arguments: exit status 2, with this message."""


def base_parser() -> argparse.ArgumentParser:
    """``--config``, ``--state-dir``, ``-v``: every command takes them."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"settings file (default {DEFAULT_CONFIG}; if absent, built-in defaults)",
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help=f"state directory (default {DEFAULT_STATE_DIR})",
    )
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    return p


def log_time_parser() -> argparse.ArgumentParser:
    """``--year``, ``--timezone``, ``--no-progress``: for commands that read finished logs."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--year",
        type=int,
        default=None,
        help="year of the first classic syslog line (default: from the first file's mtime)",
    )
    p.add_argument(
        "--timezone", default=None, help="IANA zone of year-less timestamps (default: the host's)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def rules_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--rules",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a directory of rule files; overrides bundled rules by name (repeatable)",
    )
    return p


def notify_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--notify",
        action="append",
        default=[],
        metavar="URL",
        help="an apprise URL to page, besides the configured ones (repeatable)",
    )
    return p


class Parents:
    """The parent parsers, made once and shared by the commands' parsers."""

    def __init__(self) -> None:
        self.base = base_parser()
        self.log_time = log_time_parser()
        self.rules = rules_parser()
        self.notify = notify_parser()


def settings_from(args: argparse.Namespace) -> Settings:
    """The settings ``--config`` names, with ``--state-dir`` applied."""
    settings = load_settings(args.config)
    if args.state_dir is not None:
        settings = settings.model_copy(update={"state_dir": str(args.state_dir)})
    return settings


def rules_from(settings: Settings, extra: Sequence[Path] = ()) -> list[LoadedRule]:
    loaded = load_rules([*settings.rules_dirs, *extra], include_bundled=settings.bundled_rules)
    if not loaded:
        raise UsageError("no rule is enabled: there is nothing to watch for")
    return loaded


def reference_of(year: int | None) -> datetime | None:
    """``--year``: the first year-less line is taken to be no later than its end."""
    if year is None:
        return None
    if not 1970 <= year <= 9999:
        raise UsageError(f"--year {year}: out of range")
    return datetime(year, 12, 31, 23, 59, 59, tzinfo=UTC)
