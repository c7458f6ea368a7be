"""``stormwatch status``: what a running watcher has seen (from its status file)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from watcher.cli.common import EXIT_HELP, EXIT_OK, Parents, UsageError, settings_from
from watcher.core.latch import Latch
from watcher.runtime.daemon import STATUS_FILE
from watcher.state.files import read_json

SHOWN = ("lines", "lines_per_second", "events", "unparsed", "last_event_time", "queue_depth")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: Parents) -> None:
    p = sub.add_parser(
        "status",
        parents=[parents.base],
        help="what a running watcher has seen (from its status file)",
        epilog=EXIT_HELP,
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from watcher.responders.latchstore import LatchStore
    from watcher.state.runlock import holder

    settings = settings_from(args)
    path = Path(settings.state_dir) / STATUS_FILE
    status = read_json(path)
    latch = LatchStore(settings.state_dir).read()
    pid = holder(settings.state_dir)
    if not isinstance(status, dict):
        if pid is None and not latch.tripped:
            raise UsageError(f"{path}: no status: is a watcher running with this state directory?")
        status = {}
    status["running"] = pid is not None
    switch = _switch(latch)
    status["switch"] = switch
    if args.json:
        sys.stdout.write(json.dumps(status, indent=2) + "\n")
        return EXIT_OK
    w = sys.stdout.write
    w(f"{switch['summary']}\n")
    if pid is not None:
        w(f"  watcher: running (pid {pid}, updated {status.get('updated')})\n")
    else:
        w(f"  watcher: NOT RUNNING (last update {status.get('updated', 'never')})\n")
    if status.get("tripped_rules"):
        w(f"  tripped rules: {', '.join(status['tripped_rules'])}\n")
    for key in SHOWN:
        if key in status:
            w(f"  {key.replace('_', ' ')}: {status.get(key)}\n")
    loss = status.get("log_loss") or {}
    if loss.get("reports"):
        lost, reports = loss["lines_lost"], loss["reports"]
        w(f"  WARNING: {lost} lines lost to rate limiting ({reports} reports): partly blind\n")
    steps = status.get("time_steps") or {}
    if steps.get("back"):
        w(f"  log time went back {steps['back']} time(s), by up to "
          f"{steps['largest_seconds']:.0f} s: lines dated ahead (windows re-based)\n")  # fmt: skip
    for name, counters in (status.get("sources") or {}).items():
        w(f"  {name}:\n")
        for k, v in counters.items():
            w(f"    {k.replace('_', ' ')}: {v}\n")
    return EXIT_OK


def _switch(latch: Latch) -> dict[str, object]:
    """The switch as latch.json has it: the truth, whatever a restarted watcher has seen."""
    if latch.unknown:
        return {"state": "tripped", "unknown": latch.unknown,
                "summary": f"TRIPPED, state unknown: {latch.unknown}"}  # fmt: skip
    if not latch.tripped:
        return {"state": "armed", "summary": "ARMED"}
    incident = latch.incident.id if latch.incident is not None else "?"
    failed = latch.failed()
    summary = f"TRIPPED since {latch.since} (incident {incident}, {len(latch.held)} held)"
    frozen, contained = latch.latest("freeze-postfix"), latch.latest("contain-postfix")
    if frozen is not None and frozen.ok:
        transports = (frozen.details.get("applied") or {}).get("defer_transports", "?")
        summary += f"; FROZEN: transports {transports} deferred, all outbound mail on them waits"
    elif contained is not None and contained.ok:
        summary += "; storm mail contained, outbound mail from other senders keeps flowing"
    if failed:
        summary += f"; FAILED: {', '.join(failed)} (retried while tripped)"
    return {"state": "tripped", "incident": incident, "since": latch.since,
            "held": len(latch.held), "failed": failed, "summary": summary}  # fmt: skip
