"""The ``stormwatch`` command line: one module per command, its parser beside its handler.

The only package that writes to stdout. Exit statuses are in
:mod:`watcher.cli.common`; :func:`main` maps stormwatch's errors to them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from watcher import __version__
from watcher.cli import (
    check_config,
    fleet,
    incidents,
    install_unit,
    notify_test,
    rearm,
    replay,
    report,
    run,
    status,
    trip,
)
from watcher.cli.common import EXIT_CONFIG, EXIT_FAILURE, EXIT_HELP, EXIT_OK, Parents
from watcher.core.errors import ConfigError, StormwatchError
from watcher.runtime import logsetup

COMMANDS = (replay, report, incidents, run, trip, rearm, notify_test, status, fleet,
            install_unit, check_config)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="stormwatch",
        description="A kill switch for Postfix mail storms.",
        epilog=EXIT_HELP,
    )
    top.add_argument("--version", action="version", version=f"stormwatch {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parents = Parents()
    for command in COMMANDS:
        command.register(sub, parents)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logsetup.configure(args.verbose)
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        return _fail(exc, EXIT_CONFIG)
    except StormwatchError as exc:
        return _fail(exc, EXIT_FAILURE)
    except BrokenPipeError:
        return EXIT_OK
    return code


def _fail(exc: Exception, code: int) -> int:
    journal = logsetup.journal_stream(sys.stderr)
    sys.stderr.write(logsetup.error_line(str(exc), journal=journal))
    return code
