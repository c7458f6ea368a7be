"""``stormwatch install-unit``: the systemd unit with this host's paths, and a settings file."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from watcher.cli.common import EXIT_HELP, EXIT_OK, Parents, UsageError, settings_from
from watcher.core.settings import Settings
from watcher.runtime.config import DEFAULT_CONFIG

log = logging.getLogger("watcher")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: Parents) -> None:
    p = sub.add_parser(
        "install-unit",
        parents=[parents.base],
        help="write the systemd unit (with this host's paths) and a settings file",
        epilog=EXIT_HELP,
    )
    p.add_argument(
        "--dest", type=Path, default=Path("/etc/systemd/system"), help="where the unit goes"
    )
    p.add_argument("--bin", default=None, help="the stormwatch program (default: this one)")
    p.add_argument(
        "--no-config", action="store_true", help="do not write a settings file when there is none"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # imported here: replay starts without what it does not use
    from watcher.responders.postfix import PostfixControl, PostfixError
    from watcher.runtime import install

    # --config may name where to write one: then there is nothing to read yet
    fresh = args.config is not None and not args.config.exists()
    settings = Settings() if fresh else settings_from(args)
    try:
        queue_dir = PostfixControl(settings.postfix.config_directory).param("queue_directory")
    except PostfixError as exc:
        log.warning("cannot ask Postfix for its queue_directory (%s): using the default", exc)
        queue_dir = "/var/spool/postfix"
    config = args.config or DEFAULT_CONFIG
    try:
        done = install.install(
            settings,
            queue_dir,
            dest=args.dest,
            program=args.bin,
            config=config,
            write_config=not args.no_config,
        )
    except OSError as exc:
        raise UsageError(f"install-unit: {exc}") from exc
    for line in done:
        sys.stdout.write(line + "\n")
    return EXIT_OK
