#!/usr/bin/env python3
"""Replay throughput and peak memory, end to end through ``stormwatch replay``.

Generates deterministic realistic logs (``benchmarks/genlog.py``, seed 1,
mixed traffic with one embedded storm) of 1 M and 5 M lines, then runs
``stormwatch replay --json FILE`` as a separate process several times and
reports the best wall time as lines/s, and the process's peak RSS (from
``wait4``'s rusage, so it is that process alone). For scale it also times a
bare hand-written join (null-sender ``status=sent`` by queue ID, no rules,
no report) over the same file, in this process.

Usage::

    python benchmarks/bench_replay.py [--sizes 1000000 5000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"


def ensure_log(lines: int) -> Path:
    path = OUT / f"mixed-{lines}.log"
    if not path.exists():
        OUT.mkdir(exist_ok=True)
        tmp = path.with_suffix(".tmp")
        subprocess.run(
            [sys.executable, str(HERE / "genlog.py"), "--scenario", "mixed",
             "--lines", str(lines), "--seed", "1", "-o", str(tmp)],
            check=True,
        )  # fmt: skip
        tmp.rename(path)
    return path


def run_replay(argv: Sequence[str]) -> tuple[float, int, dict[str, object]]:
    """(seconds, peak RSS in KiB, verdict) of one replay process, measured by wait4."""
    read_fd, write_fd = os.pipe()
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        os.dup2(write_fd, 1)
        os.execv(argv[0], list(argv))
    os.close(write_fd)
    chunks = []
    with os.fdopen(read_fd, "rb") as r:
        while chunk := r.read(1 << 16):
            chunks.append(chunk)
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"replay failed with exit status {code}")
    return elapsed, usage.ru_maxrss, json.loads(b"".join(chunks))


def bare_join(path: Path) -> float:
    """Lines/s of the simplest useful join, for comparing machines."""
    start = time.perf_counter()
    nulls: set[str] = set()
    sent = n = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            n += 1
            if "from=<>" in line:
                nulls.add(line.split(" ", 6)[5])
            elif "status=sent" in line and "postfix/smtp" in line:
                if line.split(" ", 6)[5] in nulls:
                    sent += 1
            elif ": removed" in line:
                nulls.discard(line.split(" ", 6)[5])
    return n / (time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    head = ("lines", "best s", "lines/s", "peak RSS MiB", "bare join/s")
    print("{:>10} {:>8} {:>12} {:>13} {:>12}  tripped".format(*head))
    for size in args.sizes:
        path = ensure_log(size)
        argv = [sys.executable, "-m", "watcher", "replay", "--json", "--no-progress", str(path)]
        runs = [run_replay(argv) for _ in range(args.runs)]
        best = min(r[0] for r in runs)
        rss = max(r[1] for r in runs) / 1024
        verdict = runs[0][2]
        lines = verdict["lines"]
        assert isinstance(lines, int)
        trip = verdict["trip"]
        rule = trip.get("rule") if isinstance(trip, dict) else None
        bare = bare_join(path)
        print(
            f"{lines:>10,} {best:>8.2f} {lines / best:>12,.0f} {rss:>13.1f} {bare:>12,.0f}  {rule}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
