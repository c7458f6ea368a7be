"""The live run loop: sources -> bounded queue -> pipeline -> responders.

One reader thread per source polls it and puts batches on a bounded queue;
the calling thread runs the pipeline over them and only then commits each
batch's last position back to its source (at-least-once). When the pipeline
falls behind, the readers wait on the full queue: no line is dropped.

Every few seconds the watcher rewrites a status file (counters for
``stormwatch status``) and calls ``on_tick`` (reminders, hold sweeps, the
systemd watchdog: things that must happen while the pipeline is alive).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from watcher.core.headers import JOURNAL
from watcher.core.pipeline import Pipeline
from watcher.core.times import iso, wall_us
from watcher.sources.base import Item, JournalRecord, Source, TextLine
from watcher.state.files import atomic_write_json

log = logging.getLogger(__name__)

STATUS_FILE = "status.json"


@dataclass(slots=True)
class _SourceState:
    source: Source
    lines: int = 0
    errors: int = 0
    last_commit: float | None = None
    pending: object = None  # the last position processed but not yet committed
    commit_failures: int = 0
    commit_error: str = ""
    thread: threading.Thread | None = None


@dataclass(slots=True)
class WatcherStats:
    backpressure_waits: int = 0
    started: float = field(default_factory=time.time)


class Watcher:
    """Runs sources into a pipeline until told to stop."""

    def __init__(
        self,
        pipeline: Pipeline,
        sources: Sequence[Source],
        *,
        state_dir: str | os.PathLike[str],
        status_every: float = 5.0,
        commit_every: float = 1.0,
        queue_size: int = 64,
        poll_timeout: float = 0.5,
        on_tick: Callable[[], None] | None = None,
        on_ready: Callable[[], object] | None = None,
        on_stop: Callable[[], None] | None = None,
        on_poll: Callable[[], None] | None = None,
        extra_status: Callable[[], dict[str, Any]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.pipeline = pipeline
        self._sources = [_SourceState(s) for s in sources]
        self.status_path = Path(state_dir) / STATUS_FILE
        self._status_every = status_every
        self._commit_every = commit_every
        self._queue: queue.Queue[tuple[_SourceState, list[Item]]] = queue.Queue(queue_size)
        self._poll_timeout = poll_timeout
        self._on_tick = on_tick
        self._on_ready = on_ready
        self._on_stop = on_stop
        self._on_poll = on_poll  # every turn of the loop (at least every poll_timeout)
        self._extra_status = extra_status
        self._clock = clock
        self._wall = wall
        self.stats = WatcherStats(started=wall())
        self._last_status = 0.0
        self._last_lines = 0
        self._status_error = ""

    # -- running -------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Open the sources, run until ``stop`` is set, then flush and close."""
        for st in self._sources:
            st.source.open()
            log.info("following %s", st.source.name)
        for st in self._sources:
            st.thread = threading.Thread(
                target=self._read, args=(st, stop), name=f"read {st.source.name}", daemon=True
            )
            st.thread.start()
        if self._on_ready is not None:
            self._on_ready()
        try:
            while not stop.is_set():
                try:
                    st, items = self._queue.get(timeout=self._poll_timeout)
                except queue.Empty:
                    pass
                else:
                    self._process(st, items)
                if self._on_poll is not None:
                    self._on_poll()
                self._tick()
        finally:
            if self._on_stop is not None:
                self._on_stop()
            for st in self._sources:  # readers stop at the flag; what they queued still counts
                if st.thread is not None:
                    st.thread.join(timeout=5)
            self._drain()
            for st in self._sources:
                self._commit(st)
                st.source.close()
            self.write_status()

    def _read(self, st: _SourceState, stop: threading.Event) -> None:
        """Reader thread: poll, hand batches over, never give up silently."""
        backoff = 0.5
        while not stop.is_set():
            try:
                items = st.source.poll(self._poll_timeout)
                backoff = 0.5
            except Exception:
                st.errors += 1
                log.exception("%s: reading failed; trying again in %.1f s", st.source.name, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            while items and not stop.is_set():
                try:
                    self._queue.put((st, items), timeout=self._poll_timeout)
                    break
                except queue.Full:
                    self.stats.backpressure_waits += 1

    def _drain(self) -> None:
        """What the readers queued before the stop still goes through."""
        while True:
            try:
                st, items = self._queue.get_nowait()
            except queue.Empty:
                return
            self._process(st, items)

    def _process(self, st: _SourceState, items: list[Item]) -> None:
        p = self.pipeline
        name = st.source.name
        texts: list[str] = []
        for item in items:
            if isinstance(item, TextLine):
                texts.append(item.text)
                continue
            if texts:
                p.run(texts, name, st.lines + 1)
                st.lines += len(texts)
                texts = []
            assert isinstance(item, JournalRecord)
            st.lines += 1
            if item.program.startswith("postfix"):
                p.note_format(name, JOURNAL, st.lines)  # said once; fields have no header
            ev = p.parser.parse_record(item.time, item.host, item.program, item.pid, item.message)
            if ev is not None:
                p.feed_event(ev, name, st.lines, f"{item.program}[{item.pid}]: {item.message}")
        if texts:
            p.run(texts, name, st.lines + 1)
            st.lines += len(texts)
        st.pending = items[-1].position
        if st.last_commit is None or self._clock() - st.last_commit >= self._commit_every:
            self._commit(st)

    def _commit(self, st: _SourceState) -> None:
        """Checkpoint what went through. At most every ``commit_every`` seconds (each is
        an fsync), and at every tick and at the stop: at-least-once either way."""
        if st.pending is None:
            return
        try:
            st.source.commit(st.pending)
        except OSError as exc:  # a full disk: counted, logged, tried again at the next tick
            st.commit_failures += 1
            if not st.commit_error:
                log.error(
                    "%s: cannot save the checkpoint (%s): going on, trying again; after a "
                    "restart lines since the last saved one are read again",
                    st.source.name,
                    exc.strerror or exc,
                )
            st.commit_error = str(exc.strerror or exc)
            st.last_commit = self._clock()  # retry at the commit pace, not every batch
            return
        if st.commit_error:
            log.warning("%s: checkpoint saved again", st.source.name)
            st.commit_error = ""
        st.pending = None
        st.last_commit = self._clock()

    def _tick(self) -> None:
        now = self._clock()
        for st in self._sources:
            if st.pending is not None and now - (st.last_commit or 0.0) >= self._commit_every:
                self._commit(st)
        if now - self._last_status < self._status_every:
            return
        if self._on_tick is not None:
            try:
                self._on_tick()
            except Exception:
                log.exception("periodic work failed; the watcher goes on")
        self.write_status()

    # -- status --------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        now, wall = self._clock(), self._wall()
        p = self.pipeline
        lines = sum(st.lines for st in self._sources)
        elapsed = now - self._last_status if self._last_status else 0.0
        rate = (lines - self._last_lines) / elapsed if elapsed > 0 else 0.0
        tripped = p.decider.tripped_rules()
        out: dict[str, Any] = {
            "pid": os.getpid(),
            "started": iso(wall_us(self.stats.started), UTC, "seconds"),
            "updated": iso(wall_us(wall), UTC, "seconds"),
            "state": "tripped" if tripped else "armed",
            "tripped_rules": sorted(tripped),
            "lines": lines,
            "lines_per_second": round(rate, 1),
            "events": p.events,
            "unparsed": p.parser.stats.unparsed,
            "unreadable": p.parser.stats.unreadable,  # Postfix lines with a header none reads
            "header_formats": {n: h.format for n, h in p.headers.items()},
            "last_event_time": (
                iso(p.last_time, UTC, "seconds") if p.last_time is not None else None
            ),
            "log_loss": {"reports": p.loss.events, "lines_lost": p.loss.lost},
            "time_steps": {
                "back": p.time_steps.back,
                "largest_seconds": p.time_steps.largest / 1_000_000,
            },
            "queue_depth": self._queue.qsize(),
            "backpressure_waits": self.stats.backpressure_waits,
            "correlation": {
                "open": len(p.correlator),
                "evicted": p.correlator.stats.evicted,
                "expired": p.correlator.stats.expired,
            },
            "sources": {
                st.source.name: {
                    **st.source.counters(),
                    "read_errors": st.errors,
                    "checkpoint_failures": st.commit_failures,
                    "checkpoint_age_seconds": (
                        round(now - st.last_commit, 1) if st.last_commit is not None else None
                    ),
                }
                for st in self._sources
            },
        }
        if self._extra_status is not None:
            out.update(self._extra_status())
        return out

    def write_status(self) -> None:
        status = self.status()
        self._last_status = self._clock()
        self._last_lines = status["lines"]
        try:
            atomic_write_json(self.status_path, status)
        except OSError as exc:
            if not self._status_error:
                log.warning("cannot write %s: %s (trying again every few seconds)",
                            self.status_path, exc)  # fmt: skip
            self._status_error = str(exc)
            return
        self._status_error = ""
