"""FileSource latency (append -> TextLine returned by poll()) and idle CPU.

A separate writer process appends lines at a fixed rate, each carrying the
CLOCK_MONOTONIC time of its write; the benchmark polls a FileSource and takes,
for each line, the time poll() returned it minus the time it was written. Then
a FileSource waits on an idle file and the process's CPU time and context
switches are measured.

    python benchmarks/bench_latency.py                  # 3 s per rate, 30 s idle
    python benchmarks/bench_latency.py --seconds 5 --rates 100,2000,10000 --idle-seconds 10

"bare wd" is the floor on this machine: a bare watchdog handler reading the file in
watchdog's own thread, as fast as a follower built on watchdog can be.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from watcher.sources.base import TextLine
from watcher.sources.file import FileSource

MODES = (("inotify", True, 1.0), ("poll 1s", False, 1.0))


@dataclass(frozen=True, slots=True)
class Latency:
    mode: str
    rate: int
    lines: int
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass(frozen=True, slots=True)
class Idle:
    mode: str
    seconds: float
    cpu_s: float
    ctx_switches: int


def write_lines(path: Path, rate: int, seconds: float) -> None:
    """The writer process: O_APPEND, one write() per line, as a syslog daemon does."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    total = int(rate * seconds)
    pad = "x" * 80
    start = time.monotonic()
    for seq in range(total):
        due = start + seq / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        line = f"Nov 28 04:17:01 mx1 postfix/smtp[1]: t={time.monotonic_ns()} seq={seq} {pad}\n"
        os.write(fd, line.encode())
    os.close(fd)


def measure(
    directory: Path, mode: str, inotify: bool, interval: float, rate: int, seconds: float
) -> Latency:
    log = directory / f"{mode.replace(' ', '')}-{rate}.log"
    log.touch()
    source = FileSource(
        log, directory / f"{log.name}.state", use_inotify=inotify, poll_interval=interval
    )
    source.open()
    total = int(rate * seconds)
    writer = subprocess.Popen(
        [sys.executable, __file__, "--write", str(log), str(rate), str(seconds)]
    )
    latencies: list[float] = []
    deadline = time.monotonic() + seconds + 30
    try:
        while len(latencies) < total and time.monotonic() < deadline:
            for item in source.poll(1.0):
                now = time.monotonic_ns()
                assert isinstance(item, TextLine)
                latencies.append((now - _stamp(item.text)) / 1e6)
    finally:
        writer.wait(timeout=seconds + 30)
        source.close()
    if len(latencies) < total:
        raise SystemExit(f"{mode} {rate}/s: only {len(latencies)} of {total} lines arrived")
    cuts = statistics.quantiles(latencies, n=100)
    return Latency(mode, rate, len(latencies), cuts[49], cuts[98], max(latencies))


def _stamp(line: bytes | str) -> int:
    text = line.decode() if isinstance(line, bytes) else line
    return int(text.split(" t=", 1)[1].split(" ", 1)[0])


class _BareFollower(FileSystemEventHandler):
    """The baseline: a bare watchdog handler reading the file in watchdog's own thread."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.fd = os.open(path, os.O_RDONLY)
        self.offset = 0
        self.rest = b""
        self.latencies: list[float] = []

    def on_modified(self, event: FileSystemEvent) -> None:
        if event.src_path != self.path:
            return
        size = os.fstat(self.fd).st_size
        if size <= self.offset:
            return
        data = self.rest + os.pread(self.fd, size - self.offset, self.offset)
        self.offset = size
        parts = data.split(b"\n")
        self.rest = parts.pop()
        now = time.monotonic_ns()
        self.latencies.extend((now - _stamp(p)) / 1e6 for p in parts)


def measure_bare(directory: Path, rate: int, seconds: float) -> Latency:
    log = directory / f"bare-{rate}.log"
    log.touch()
    follower = _BareFollower(log)
    observer = Observer()
    observer.schedule(follower, str(directory))
    observer.start()
    total = int(rate * seconds)
    try:
        subprocess.run(
            [sys.executable, __file__, "--write", str(log), str(rate), str(seconds)],
            check=True,
            timeout=seconds + 30,
        )
        deadline = time.monotonic() + 10
        while len(follower.latencies) < total and time.monotonic() < deadline:
            time.sleep(0.01)  # waiting for watchdog's thread to catch up, bounded
    finally:
        observer.stop()
        observer.join()
        os.close(follower.fd)
    got = follower.latencies
    cuts = statistics.quantiles(got, n=100)
    return Latency("bare wd", rate, len(got), cuts[49], cuts[98], max(got))


def idle(directory: Path, mode: str, inotify: bool, interval: float, seconds: float) -> Idle:
    log = directory / f"idle-{mode.replace(' ', '')}.log"
    log.write_text("one line\n")
    source = FileSource(
        log, directory / f"{log.name}.state", use_inotify=inotify, poll_interval=interval
    )
    source.open()
    process = psutil.Process()
    try:
        before, switches = process.cpu_times(), process.num_ctx_switches()
        end = time.monotonic() + seconds
        while (remaining := end - time.monotonic()) > 0:
            if source.poll(remaining):
                raise SystemExit("the idle file was written to")
        after, switches_after = process.cpu_times(), process.num_ctx_switches()
    finally:
        source.close()
    cpu = (after.user - before.user) + (after.system - before.system)
    count = (switches_after.voluntary - switches.voluntary) + (
        switches_after.involuntary - switches.involuntary
    )
    return Idle(mode, seconds, cpu, count)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds of writing per rate")
    parser.add_argument("--rates", default="100,2000", help="lines per second, comma-separated")
    parser.add_argument("--idle-seconds", type=float, default=30.0, help="idle measurement")
    parser.add_argument(
        "--write", nargs=3, metavar=("PATH", "RATE", "SECONDS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.write:
        write_lines(Path(args.write[0]), int(args.write[1]), float(args.write[2]))
        return 0
    rates = [int(r) for r in args.rates.split(",")]
    with tempfile.TemporaryDirectory(prefix="stormwatch-bench-") as tmp:
        directory = Path(tmp)
        print(f"append -> poll() latency, {args.seconds:g} s per rate (writer in another process)")
        print(f"{'mode':<10} {'rate/s':>7} {'lines':>7} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}")
        results = [measure_bare(directory, rate, args.seconds) for rate in rates]
        results += [
            measure(directory, mode, inotify, interval, rate, args.seconds)
            for mode, inotify, interval in MODES
            for rate in rates
        ]
        for r in results:
            print(
                f"{r.mode:<10} {r.rate:>7} {r.lines:>7} "
                f"{r.p50_ms:>9.3f} {r.p99_ms:>9.3f} {r.max_ms:>9.3f}"
            )
        print()
        print(f"idle FileSource, {args.idle_seconds:g} s, one poll() call waiting the whole time")
        print(f"{'mode':<10} {'cpu s':>9} {'cpu %':>8} {'ctx switches':>13}")
        for mode, inotify, interval in MODES:
            i = idle(directory, mode, inotify, interval, args.idle_seconds)
            percent = 100 * i.cpu_s / i.seconds
            print(f"{i.mode:<10} {i.cpu_s:>9.4f} {percent:>8.4f} {i.ctx_switches:>13}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
