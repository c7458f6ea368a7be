"""``stormwatch fleet status``: every host of the fleet, its latch, its lag, its Redis."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime

from watcher.cli.common import EXIT_FAILURE, EXIT_HELP, EXIT_OK, Parents, UsageError, settings_from
from watcher.core.fleetlatch import HostState


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: Parents) -> None:
    p = sub.add_parser(
        "fleet",
        parents=[parents.base],
        help="the fleet's hosts: their latch, lag and Redis state ('fleet status')",
        epilog=EXIT_HELP,
    )
    p.add_argument("what", choices=("status",), help="status: list the hosts")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import redis

    from watcher.runtime.fleetlink import read_hosts

    settings = settings_from(args)
    if not settings.fleet.url:
        raise UsageError("no fleet: [fleet] url is empty in the settings")
    try:
        states, bad = read_hosts(settings.fleet)
    except (redis.RedisError, OSError) as exc:
        sys.stderr.write(f"stormwatch fleet status: Redis cannot be asked: {exc}\n")
        return EXIT_FAILURE
    if args.json:
        rows = [{**json.loads(s.to_json()), "lag_seconds": lag(s, states)} for s in states]
        sys.stdout.write(json.dumps({"hosts": rows, "unreadable": bad}, indent=2) + "\n")
        return EXIT_OK
    w = sys.stdout.write
    w(f"fleet {settings.fleet.name}: {len(states)} host(s)\n")
    now = time.time()
    for s in states:
        latch = f"TRIPPED by {s.rule} ({s.incident})" if s.tripped else "armed"
        if s.offender:
            latch += f", offender {s.offender}"
        behind = lag(s, states)
        lagging = f"{behind:.0f} s behind the newest" if behind is not None else "no event yet"
        w(f"  {s.host}: {latch}; last event {s.last_event or '-'} ({lagging}); "
          f"Redis {s.redis}; reported {now - s.seen:.0f} s ago\n")  # fmt: skip
    for b in bad:
        w(f"  unreadable: {b}\n")
    return EXIT_OK


def lag(state: HostState, states: list[HostState]) -> float | None:
    """How far ``state``'s last event is behind the newest host's (seconds)."""
    times = [t for t in (_epoch(s.last_event) for s in states) if t is not None]
    mine = _epoch(state.last_event)
    if mine is None or not times:
        return None
    return max(times) - mine


def _epoch(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None
