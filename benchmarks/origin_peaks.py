#!/usr/bin/env python3
"""The busiest origin per window on logs without a storm: the figures the flood rules'
thresholds stand on (rules/sasl-flood.toml, local-flood.toml, client-flood.toml).

For each log, each origin kind (SASL user, pickup uid, network client) and each
window length, the largest number of deliveries to remote relays (smtp, any status)
one origin had in one window, and which origin it was.

Usage::

    python benchmarks/origin_peaks.py FILE... [--windows 60 600 3600]
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from datetime import UTC, datetime

from watcher.core.parse import Parser
from watcher.core.pipeline import Pipeline
from watcher.core.rules import Rule
from watcher.sources.replay import ReplayInput

KINDS = (("sasl", "sasl-user"), ("pickup", "uid"), ("client", "client"))


def _rules(windows: Sequence[int]) -> list[Rule]:
    return [
        Rule.model_validate(
            {
                "name": f"{kind}-{w}",
                "trip_at": 100_000,
                "match": {"origin": kind, "agents": ["smtp"], "remote": True},
                "window": {"seconds": w, "group_by": group},
            }
        )
        for kind, group in KINDS
        for w in windows
    ]


def peaks(path: str, windows: Sequence[int]) -> dict[str, tuple[int, str]]:
    rules = _rules(windows)
    best: dict[str, tuple[int, str]] = {r.name: (0, "") for r in rules}
    pipeline = Pipeline.build(rules, Parser(reference=datetime.fromtimestamp(
        os.stat(path).st_mtime, UTC)))  # fmt: skip
    detector_feed = pipeline.detector.feed

    def feed(fact):  # type: ignore[no-untyped-def]
        hits = detector_feed(fact)
        for h in hits:
            if h.count > best[h.rule.name][0]:
                best[h.rule.name] = (h.count, h.key)
        return hits

    pipeline.detector.feed = feed  # type: ignore[method-assign]
    inp = ReplayInput(path)
    inp.open()
    n = 1
    for block in inp.blocks():
        n += pipeline.run_text(block, path, n)
    inp.close()
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--windows", nargs="+", type=int, default=[60, 600, 3600])
    args = ap.parse_args()
    print("file | " + " | ".join(f"{k} {w}s" for k, _ in KINDS for w in args.windows))
    for path in args.files:
        best = peaks(path, args.windows)
        cells = [f"{best[f'{k}-{w}'][0]} ({best[f'{k}-{w}'][1] or '-'})" for k, _ in KINDS
                 for w in args.windows]  # fmt: skip
        print(os.path.basename(path) + " | " + " | ".join(cells))


if __name__ == "__main__":
    main()
