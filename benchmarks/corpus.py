#!/usr/bin/env python3
"""Replay a corpus of real logs and say, per file and in total, what was read.

For each file: lines; Postfix lines (a ``postfix.../...`` tag); the header
format found; Postfix lines whose header was read and those that were not
(unreadable, with reasons); Postfix lines of a kind the parser knows that it
could not parse (unparsed); events by kind; matches per default rule; and
whether the switch would have tripped. The verdict comes from ``stormwatch
replay --json`` run as its own process, exactly as a user would run it; the
events by kind from the per-line parser over the same file. A check, not a
test: it asserts nothing.

Usage::

    python benchmarks/corpus.py ../shared/realworld [--timezone UTC]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from watcher.core.parse import Parser

POSTFIX_TAG = re.compile(r"\bpostfix(?:-[\w.-]+)?/[\w./-]+(?:\[\d+\]| \d+ )")
KINDS = ("Delivery", "ForwardingLoop", "QueueSender", "Removed", "BounceNotice", "LogLoss")
SHORT = {"backscatter": "bs", "bounce-burst": "bb", "forwarding-loop": "fl"}


def files(paths: Sequence[str]) -> Iterator[Path]:
    for p in map(Path, paths):
        if p.is_dir():
            yield from sorted(f for f in p.iterdir() if f.is_file() and f.suffix == ".log")
        else:
            yield p


def replay(path: Path, timezone: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "watcher", "replay", "--json", "--timezone", timezone, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode not in (0, 1, 4):  # ok, tripped, blind
        raise SystemExit(f"{path}: replay exited {done.returncode}: {done.stderr.strip()}")
    verdict: dict[str, Any] = json.loads(done.stdout)
    verdict["exit"] = done.returncode
    return verdict


def per_line(path: Path, timezone: str) -> tuple[int, int, Counter[str]]:
    """(lines, Postfix lines, events by kind) from the per-line parser."""
    mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    parser = Parser(reference=mtime, tz=ZoneInfo(timezone))
    kinds: Counter[str] = Counter()
    lines = postfix = 0
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            lines += 1
            line = line.rstrip("\n")
            if POSTFIX_TAG.search(line):
                postfix += 1
            ev = parser.parse(line)
            if ev is not None:
                kinds[type(ev).__name__] += 1
    return lines, postfix, kinds


def row(path: Path, timezone: str) -> dict[str, Any]:
    v = replay(path, timezone)
    lines, postfix, kinds = per_line(path, timezone)
    formats = sorted({c["format"] for i in v["inputs"] for c in i.get("format_changes", [])})
    return {
        "file": path.name,
        "lines": lines,
        "postfix": postfix,
        "format": "+".join(formats) or "-",
        "recognised": postfix - v["unreadable"],
        "unreadable": v["unreadable"],
        "unparsed": v["unparsed"],
        "events": v["events"],
        "kinds": kinds,
        "matches": {r["name"]: r["matches"] for r in v["rules"]},
        "tripped": v["trip"]["rule"] if v["tripped"] and v["trip"] else "",
        "samples": [("unreadable", s[0], s[1]) for s in v["unreadable_samples"]]
        + [("unparsed", "", s) for s in v["unparsed_samples"]],
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+", help="log files, or directories of *.log files")
    ap.add_argument("--timezone", default="UTC", help="zone of zone-less timestamps")
    args = ap.parse_args(argv)
    rows = [row(p, args.timezone) for p in files(args.paths)]
    rules = sorted({name for r in rows for name in r["matches"]})
    head = (f"{'file':<34} {'lines':>7} {'postfix':>7} {'format':<24} {'read':>7} {'unread':>6} "
            f"{'unparsed':>8} {'events':>7} " + " ".join(f"{SHORT.get(n, n):>5}" for n in rules)
            + "  tripped")  # fmt: skip
    print(head)
    total: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    for r in rows:
        print(
            f"{r['file']:<34} {r['lines']:>7} {r['postfix']:>7} {r['format'][:24]:<24} "
            f"{r['recognised']:>7} {r['unreadable']:>6} {r['unparsed']:>8} {r['events']:>7} "
            + " ".join(f"{r['matches'].get(n, 0):>5}" for n in rules)
            + f"  {r['tripped'] or '-'}"
        )
        for key in ("lines", "postfix", "recognised", "unreadable", "unparsed", "events"):
            total[key] += r[key]
        for n in rules:
            total[n] += r["matches"].get(n, 0)
        total["tripped"] += bool(r["tripped"])
        kinds.update(r["kinds"])
    print(
        f"{'TOTAL (' + str(len(rows)) + ' files)':<34} {total['lines']:>7} {total['postfix']:>7} "
        f"{'':<24} {total['recognised']:>7} {total['unreadable']:>6} {total['unparsed']:>8} "
        f"{total['events']:>7} "
        + " ".join(f"{total[n]:>5}" for n in rules)
        + f"  {total['tripped']} tripped"
    )
    print("\nevents by kind (per-line parser): "
          + ", ".join(f"{k} {kinds[k]}" for k in KINDS if kinds[k]))  # fmt: skip
    print("rules: " + ", ".join(f"{SHORT.get(n, n)} = {n}" for n in rules))
    samples = [(r["file"], *s) for r in rows for s in r["samples"]]
    if samples:
        print("\nPostfix lines not read (up to 10 per file and kind, as replay keeps them):")
        for name, what, reason, line in samples:
            print(f"  {name}: {what}{' (' + reason + ')' if reason else ''}: {line[:160]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
