"""``stormwatch fleet status``: every host of the fleet, its latch, its lag, its Redis;
``stormwatch fleet rearm [INCIDENT]``: ask every host tripped for that incident (or
every tripped host) to re-arm, and wait for them to say they did."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from typing import TYPE_CHECKING

from watcher.cli.common import EXIT_FAILURE, EXIT_HELP, EXIT_OK, Parents, UsageError, settings_from
from watcher.core.fleetlatch import HostState, rearm_targets

if TYPE_CHECKING:
    from watcher.fleet.store import FleetStore


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: Parents) -> None:
    p = sub.add_parser(
        "fleet",
        parents=[parents.base],
        help="the fleet's hosts: their latch, lag and Redis ('status'); re-arm them ('rearm')",
        epilog=EXIT_HELP,
    )
    p.add_argument(
        "what",
        choices=("status", "rearm"),
        help="status: list the hosts; rearm: re-arm the hosts tripped for INCIDENT (or all)",
    )
    p.add_argument("incident", nargs="?", default="", help="rearm: the incident (default: all)")
    p.add_argument(
        "--wait", type=float, default=30.0, help="rearm: seconds to wait for the hosts (30)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import redis

    from watcher.runtime.fleetlink import fleet_store

    settings = settings_from(args)
    if not settings.fleet.url:
        raise UsageError("no fleet: [fleet] url is empty in the settings")
    store = fleet_store(settings.fleet)
    try:
        if args.what == "rearm":
            return _rearm(store, args.incident, args.wait)
        states, bad = store.hosts()
    except (redis.RedisError, OSError) as exc:
        sys.stderr.write(f"stormwatch fleet {args.what}: Redis cannot be asked: {exc}\n")
        return EXIT_FAILURE
    finally:
        store.close()
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


def _rearm(store: FleetStore, incident: str, wait: float) -> int:
    """Ask the hosts, then wait until each publishes a latch without that incident."""
    targets = rearm_targets(store.hosts()[0], incident)
    if not targets:
        sys.stdout.write("no host is tripped" + (f" for incident {incident}" if incident else "")
                         + ": nothing to re-arm\n")  # fmt: skip
        return EXIT_OK
    store.request_rearm(targets)
    sys.stdout.write(f"asked {', '.join(sorted(targets))} to re-arm; waiting up to {wait:g} s\n")
    deadline = time.monotonic() + wait
    left = dict(targets)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        now = {s.host: s.incident for s in store.hosts()[0] if s.tripped}
        for host in [h for h, inc in left.items() if now.get(h) != inc]:
            sys.stdout.write(f"  {host}: re-armed (incident {left.pop(host)})\n")
    for host, inc in sorted(left.items()):
        sys.stdout.write(f"  {host}: NOT re-armed within {wait:g} s (incident {inc}): is its "
                         "watcher running? Run stormwatch rearm on it\n")  # fmt: skip
    return EXIT_FAILURE if left else EXIT_OK


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
