"""Sharing in the background: the pipeline hands matches over, a worker thread batches them
to Redis, the pipeline's loop picks the fleet's counts up. Redis never blocks the pipeline.

* :meth:`Sharer.offer` (pipeline thread) puts a match on a bounded queue and
  never waits: when the queue is full the match stays local only (counted in
  ``not_shared``).
* The worker takes what is queued (up to ``batch_max`` at once), keeps it in
  :class:`~watcher.core.fleet.Retained` and sends it in one script. With
  nothing new for ``poll_seconds`` it reads the counts of the groups it holds,
  so another host's matches can trip this one.
* On an error or a timeout the fleet is *down*: one :class:`Outage` is reported,
  matches go on being retained, Redis is tried again every ``retry_seconds``.
  The first success sends every retained match (those within two windows of
  this host's latest log time: Redis may have lost them; members already there
  add nothing) and reports :class:`Resumed`.
* Every ``poll_seconds`` while up, the worker publishes :attr:`Sharer.state` (this
  host's latch and lag, set by the pipeline thread) and reads every host's back
  (:class:`Hosts`).
* :meth:`Sharer.take` (pipeline thread) returns what the worker reported.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from watcher.core.fleet import Batch, FleetCount, Retained, Shared, batches, with_idle
from watcher.core.fleetlatch import HostState

log = logging.getLogger(__name__)


class Store(Protocol):
    def add(self, batches: Sequence[Batch]) -> list[FleetCount]: ...

    def publish(self, state: HostState) -> None: ...

    def hosts(self) -> tuple[list[HostState], list[str]]: ...

    def requested(self) -> str: ...

    def done_rearm(self, incident: str) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Outage:
    problem: str


@dataclass(frozen=True, slots=True)
class Resumed:
    resent: int
    down_for: float  # seconds


@dataclass(frozen=True, slots=True)
class Hosts:
    states: list[HostState]
    unreadable: list[str]
    rearm: str = ""  # the incident this host is asked to re-arm (stormwatch fleet rearm)


Report = FleetCount | Outage | Resumed | Hosts


class Sharer:
    """The worker thread between the pipeline and the fleet's store."""

    def __init__(
        self,
        store: Store,
        *,
        queue_size: int = 100_000,
        batch_max: int = 2_000,
        poll_seconds: float = 1.0,
        retry_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._in: queue.Queue[Shared] = queue.Queue(queue_size)
        self._out: queue.SimpleQueue[Report] = queue.SimpleQueue()
        self.batch_max = batch_max
        self.poll_seconds = poll_seconds
        self.retry_seconds = retry_seconds
        self._clock = clock
        self.retained = Retained()  # the worker's alone: status() reads only counters
        self.kept = 0  # len(retained), as of the worker's last step
        self.up = True
        self.problem = ""
        self._down_since = 0.0
        self._next_try = 0.0
        self.shared = 0  # matches sent (again, after an outage, counted again)
        self.not_shared = 0  # matches dropped because the queue was full
        self.batches = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.state: HostState | None = None  # the pipeline thread's: published as it is
        self.rearmed = ""  # the pipeline thread's: a fleet re-arm request dealt with
        self._next_beat = 0.0

    # -- the pipeline's side -----------------------------------------------------

    def offer(self, ev: Shared) -> None:
        try:
            self._in.put_nowait(ev)
        except queue.Full:
            self.not_shared += 1

    def take(self) -> list[Report]:
        out: list[Report] = []
        while True:
            try:
                out.append(self._out.get_nowait())
            except queue.Empty:
                return out

    def status(self) -> dict[str, object]:
        return {
            "redis": "up" if self.up else "down",
            "problem": self.problem,
            "queued": self._in.qsize(),
            "retained": self.kept,
            "shared": self.shared,
            "not_shared": self.not_shared,
            "batches": self.batches,
            "failures": self.failures,
        }

    # -- the worker ----------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fleet", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        try:
            self.store.close()
        except Exception:  # closing a dead connection: nothing to say
            log.debug("fleet: closing the Redis client failed", exc_info=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.step(self.poll_seconds)

    def step(self, wait: float) -> None:
        """Take what is queued (waiting up to ``wait`` for the first), then share it."""
        fresh = self._collect(wait)
        for ev in fresh:
            self.retained.add(ev)
        if fresh:
            self.kept = len(self.retained)
        if not self.up:
            if self._clock() < self._next_try:
                return
            self._send(self.retained.everything(), resume=True)
            return
        self._send(fresh, resume=False)
        if self.up and self.state is not None and self._clock() >= self._next_beat:
            self._beat(self.state)

    def _beat(self, state: HostState) -> None:
        self._next_beat = self._clock() + self.poll_seconds
        try:
            done, self.rearmed = self.rearmed, ""
            if done:
                self.store.done_rearm(done)
            self.store.publish(state)
            states, bad = self.store.hosts()
            asked = self.store.requested()
        except Exception as exc:
            self._down(exc)
            return
        self._out.put(Hosts(states, bad, asked))

    def _collect(self, wait: float) -> list[Shared]:
        try:
            first = self._in.get(timeout=wait) if wait > 0 else self._in.get_nowait()
        except queue.Empty:
            return []
        out = [first]
        while len(out) < self.batch_max:
            try:
                out.append(self._in.get_nowait())
            except queue.Empty:
                break
        return out

    def _down(self, exc: Exception) -> None:
        self.failures += 1
        self._next_try = self._clock() + self.retry_seconds
        if self.up:
            self.up = False
            self._down_since = self._clock()
            self.problem = f"{type(exc).__name__}: {exc}"
            self._out.put(Outage(self.problem))

    def _send(self, events: list[Shared], *, resume: bool) -> None:
        sent = batches(events)
        try:
            counts = self.store.add(with_idle(sent, self.retained.groups()))
        except Exception as exc:  # redis.RedisError, OSError, a reply of the wrong shape
            self._down(exc)
            return
        self.batches += 1
        self.shared += len(events)
        if resume:
            self.up = True
            self.problem = ""
            self._out.put(Resumed(len(events), self._clock() - self._down_since))
        for c in counts:
            self._out.put(c)
