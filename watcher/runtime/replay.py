"""Replay: finished logs through the pipeline, with the dry-run responder.

One input after another, in the order given. A large plain file is scanned
in worker processes (:func:`watcher.sources.replay.scan_parallel`) while this
process runs the join, the rules and the decisions in order: the same answer
as one process, to the byte. A progress bar shows on a terminal for large
inputs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from watcher.core.errors import ConfigError, StormwatchError
from watcher.core.parse import Parser
from watcher.core.pipeline import Pipeline, line_at
from watcher.core.plan import PlannedAction
from watcher.core.rules import Rule
from watcher.core.settings import Settings
from watcher.reports.verdict import InputInfo
from watcher.responders.dryrun import DryRunResponder
from watcher.runtime import clock
from watcher.sources.replay import (
    PARALLEL_MIN_BYTES,
    ReplayInput,
    line_ranges,
    read_range,
    scan_parallel,
)

PROGRESS_MIN_BYTES = 32 << 20
MAX_WORKERS = 4  # processes scanning a large replay file; the join stays in this one


class InputError(ConfigError):
    """An input named on the command line does not exist or cannot be opened."""


class ReadError(StormwatchError):
    """An input could not be read to its end."""


@dataclass(frozen=True, slots=True)
class Replayed:
    pipeline: Pipeline
    inputs: list[InputInfo]
    planned: list[PlannedAction]
    tz: tzinfo


def replay(
    names: Sequence[str],
    *,
    labels: Sequence[str] | None = None,
    settings: Settings,
    rules: Sequence[Rule],
    reference: datetime | None,
    tz_name: str,
    progress: bool,
) -> Replayed:
    """Feed the inputs through a pipeline whose actions go to the dry-run responder."""
    try:
        tz = clock.zone(tz_name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    inputs = [ReplayInput(n) for n in names]
    for inp in inputs:
        if not inp.is_stdin and not Path(inp.name).is_file():
            raise InputError(f"{inp.name}: no such file")
    if reference is None:
        reference = inputs[0].mtime() or clock.now()
    responder = DryRunResponder(settings)
    pipeline = Pipeline.from_settings(
        rules, Parser(reference=reference, tz=tz), settings, on_actions=responder
    )
    infos: list[InputInfo] = []
    for inp, label in zip(inputs, labels or names, strict=True):
        lines, cut = _feed(pipeline, inp, label, progress)
        h = pipeline.headers.get(label)
        changes = tuple((c.lineno, c.new) for c in h.changes) if h is not None else ()
        infos.append(InputInfo(label, lines, cut, changes[0][1] if changes else None, changes))
    return Replayed(pipeline, infos, list(responder.planned), tz)


def _feed(pipeline: Pipeline, inp: ReplayInput, label: str, progress: bool) -> tuple[int, int]:
    """Run one input through the pipeline; return its line count and lines cut (> 64 KiB)."""
    try:
        inp.open()
    except OSError as exc:
        raise InputError(f"{inp.name}: cannot open: {exc.strerror or exc}") from exc
    bar: Any = None
    size = inp.size()
    if progress and size is not None and size >= PROGRESS_MIN_BYTES and sys.stderr.isatty():
        from tqdm import tqdm  # only on a terminal: keeps replay's memory small

        bar = tqdm(total=size, unit="B", unit_scale=True, desc=Path(inp.name).name, leave=False)

    def tick() -> None:
        if bar is not None:
            bar.update(inp.consumed() - bar.n)

    lineno = 1
    cut = 0
    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    try:
        ranges = None
        if (
            workers > 1
            and not inp.is_stdin
            and not inp.is_gzip
            and size is not None
            and size >= PARALLEL_MIN_BYTES
        ):
            ranges = line_ranges(inp.name, size)  # None: a very long line, read in order
        if ranges is not None:
            lines, cut = _feed_parallel(pipeline, inp.name, ranges, label, workers, bar)
            lineno += lines
        else:
            for block in inp.blocks(on_block=tick):
                lineno += pipeline.run_text(block, label, lineno)
    except (OSError, EOFError) as exc:
        raise ReadError(f"{inp.name}: read error after line {lineno - 1}: {exc}") from exc
    finally:
        inp.close()
        if bar is not None:
            bar.close()
    return lineno - 1, cut + inp.long_lines_cut


def _feed_parallel(
    pipeline: Pipeline,
    path: str,
    ranges: list[tuple[int, int]],
    label: str,
    workers: int,
    bar: Any,
) -> tuple[int, int]:
    """Scan a large plain file in worker processes; join and decide here, in order.

    Returns the lines read and the lines cut.
    """
    lineno = 1
    cut = 0
    cached: dict[int, str] = {}
    collapse = pipeline.detector.collapsible
    origins = pipeline.detector.origin_wants
    for start, end, scanned, cuts, (kind, at) in scan_parallel(
        path, ranges, workers, collapse, origins
    ):
        if kind is None:  # not in a fast header format: this range again, line by line
            text = read_range(path, start, end)[0]
            pipeline.run_text(text, label, lineno)
            lineno += scanned[0]
            cut += cuts
            continue
        if kind:
            pipeline.note_format(label, kind, lineno + at)

        def fetch(pos: int, start: int = start, end: int = end) -> tuple[str, int]:
            if start not in cached:  # a delivery the scanner left out: read its block again
                cached.clear()
                cached[start] = read_range(path, start, end)[0]
            return line_at(cached[start], pos)

        pipeline.apply(scanned, label, lineno, fetch)
        lineno += scanned[0]
        cut += cuts
        if bar is not None:
            bar.update(end - bar.n)
    return lineno - 1, cut
