#!/usr/bin/env python3
"""Events/s with shared windows against local ones, with a real redis-server.

Builds a log of null-sender bounces relayed out (7 lines a message, every
message one match of a rule with ``trip_at`` out of reach), then runs the
pure pipeline over it in this process, best of ``--runs``:

* **local**: the rule as it ships, ``shared = false``;
* **shared, pipeline**: ``shared = true``, each match handed to the real
  sharer (:class:`watcher.runtime.fleetlink.FleetLink`): what the watcher's
  loop pays per match;
* **shared, into Redis**: from the first line to the last match being in
  Redis (the worker's batches, one Lua script each): what the fleet's
  windows can absorb per second;
* the mean and the largest Redis round trip per batch.

A private redis-server is started on a free loopback port in a temp directory
(``--redis`` uses another one instead).

Usage::

    python benchmarks/bench_fleet.py [--messages 100000] [--runs 3] [--redis URL]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import redis

from watcher.core.fleet import Batch, FleetCount
from watcher.core.fleetlatch import HostState
from watcher.core.parse import Parser
from watcher.core.pipeline import Pipeline
from watcher.core.rules import Rule
from watcher.core.settings import FleetSettings
from watcher.fleet.sharer import Sharer
from watcher.fleet.store import FleetStore, connect
from watcher.runtime.fleetlink import FleetLink
from watcher.runtime.rulefiles import parse_rule_text

RULE = """[[rule]]
name = "bench"
trip_at = 100000
shared = {shared}
[rule.match]
event = "delivery"
sender = "null"
statuses = ["sent"]
remote = true
[rule.window]
seconds = 3600
"""


def _rule(shared: bool) -> list[Rule]:
    return [r.rule for r in parse_rule_text(RULE.format(shared=str(shared).lower()), "b.toml")]


def build_log(messages: int) -> list[str]:
    """``messages`` bounces, 10 a second of log time, each relayed out once."""
    out: list[str] = []
    for n in range(messages):
        t = 1000 + n / 10
        s = f"Oct 16 {17 + int(t) // 3600:02d}:{int(t) // 60 % 60:02d}:{int(t) % 60:02d} mx"
        orig, child = f"4{n:09X}", f"5{n:09X}"
        out += [
            f"{s} postfix/qmgr[101]: {orig}: from=<list@lists.example.org>, size=900, nrcpt=1 (queue active)",
            f"{s} postfix/smtp[102]: {orig}: to=<nobody{n}@example.net>, relay=mx.example.net[203.0.113.5]:25, delay=0.1, delays=0/0/0/0.1, dsn=5.1.1, status=bounced (550 5.1.1 no such user)",
            f"{s} postfix/bounce[103]: {orig}: sender non-delivery notification: {child}",
            f"{s} postfix/qmgr[101]: {child}: from=<>, size=2000, nrcpt=1 (queue active)",
            f"{s} postfix/qmgr[101]: {orig}: removed",
            f"{s} postfix/smtp[102]: {child}: to=<list@lists.example.org>, relay=mx.lists.example.org[198.51.100.9]:25, delay=0.2, delays=0/0/0/0.2, dsn=2.0.0, status=sent (250 ok)",
            f"{s} postfix/qmgr[101]: {child}: removed",
        ]  # fmt: skip
    return out


class TimedStore:
    """The real store, timing each batch's round trip."""

    def __init__(self, store: FleetStore) -> None:
        self.store = store
        self.trips: list[float] = []

    def add(self, batches: Sequence[Batch]) -> list[FleetCount]:
        start = time.perf_counter()
        try:
            return self.store.add(batches)
        finally:
            self.trips.append(time.perf_counter() - start)

    def publish(self, state: HostState) -> None:
        self.store.publish(state)

    def hosts(self) -> tuple[list[HostState], list[str]]:
        return self.store.hosts()

    def requested(self) -> str:
        return self.store.requested()

    def done_rearm(self, incident: str) -> None:
        self.store.done_rearm(incident)

    def close(self) -> None:
        self.store.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def private_redis() -> Iterator[str]:
    program = shutil.which("redis-server") or "/usr/bin/redis-server"
    folder = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    port = _free_port()
    proc = subprocess.Popen(
        [program, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
         "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def run_local(lines: list[str]) -> float:
    p = Pipeline.build(_rule(False), Parser(reference=datetime(2011, 10, 17, tzinfo=UTC)))
    start = time.perf_counter()
    p.run(lines, "mail.log")
    return time.perf_counter() - start


def run_shared(
    lines: list[str], url: str, fleet: str, matches: int
) -> tuple[float, float, list[float]]:
    """(pipeline seconds, seconds until every match is in Redis, round trips)."""
    settings = FleetSettings(url=url, name=fleet, host="bench")
    store = TimedStore(FleetStore(connect(settings), fleet, "bench"))
    sharer = Sharer(store, queue_size=max(matches, 100), poll_seconds=0.05)
    link = FleetLink(sharer, "bench")
    p = Pipeline.build(_rule(True), Parser(reference=datetime(2011, 10, 17, tzinfo=UTC)))
    link.attach(p)
    start = time.perf_counter()
    p.run(lines, "mail.log")
    pipeline_s = time.perf_counter() - start
    while sharer.shared < matches:
        time.sleep(0.001)
    redis_s = time.perf_counter() - start
    link.poll(p)
    link.stop()
    return pipeline_s, redis_s, store.trips


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--redis", default="", help="an existing Redis to use (its db is written)")
    args = ap.parse_args(argv)
    lines = build_log(args.messages)
    print(
        f"{platform.machine()}, Python {platform.python_version()}; {len(lines):,} lines, "
        f"{args.messages:,} matches"
    )
    local = min(run_local(lines) for _ in range(args.runs))
    with private_redis() if not args.redis else _given(args.redis) as url:
        results = [run_shared(lines, url, f"bench{i}", args.messages) for i in range(args.runs)]
    pipe = min(r[0] for r in results)
    into = min(r[1] for r in results)
    trips = [t for r in results for t in r[2]]
    m = args.messages
    print(f"local:              {m / local:>10,.0f} matches/s  ({len(lines) / local:,.0f} lines/s)")
    print(f"shared, pipeline:   {m / pipe:>10,.0f} matches/s  ({len(lines) / pipe:,.0f} lines/s)")
    print(f"shared, into Redis: {m / into:>10,.0f} matches/s")
    print(
        f"batches: {len(trips) / args.runs:,.0f} a run, round trip mean "
        f"{1000 * sum(trips) / len(trips):.2f} ms, largest {1000 * max(trips):.1f} ms"
    )
    return 0


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


if __name__ == "__main__":
    sys.exit(main())
