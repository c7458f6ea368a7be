"""Delivery: :class:`Notifier` sends pages to the targets without blocking its caller.

``send()`` only queues; one worker thread schedules, and each target has its
own lane (one send in flight at a time, in a small pool) with its own retries,
backoff and per-send timeout, so a slow or dead target delays neither the
caller nor the other targets.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import apprise

from watcher.core.settings import NotifySettings
from watcher.responders.base import Level
from watcher.responders.notify.targets import TargetInfo, parse_targets

log = logging.getLogger(__name__)

SendResult = tuple[str, bool, str]  # (redacted URL, ok, error)


@dataclass(frozen=True, slots=True)
class TargetStats:
    url: str
    sent: int
    failed: int  # messages given up on after every attempt
    retried: int  # failed attempts that were tried again
    dropped: int  # pending messages dropped because the target's queue was full
    pending: int
    last_error: str


@dataclass(frozen=True, slots=True)
class NotifierStats:
    targets: tuple[TargetStats, ...]
    dropped: int  # messages dropped from the full incoming queue
    undeliverable: int  # messages queued while there was no usable target

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class _Message:
    title: str
    body: str
    level: Level


@dataclass(slots=True, eq=False)
class _Delivery:
    message: _Message
    attempts: int = 0
    due: float = 0.0


@dataclass(slots=True, eq=False)
class _Lane:
    info: TargetInfo
    sender: Any  # an Apprise holding exactly this one target; None if unusable
    queue: deque[_Delivery] = field(default_factory=deque)
    inflight: _Delivery | None = None
    future: cf.Future[tuple[bool, str]] | None = None
    started: float = 0.0
    timed_out: bool = False
    sent: int = 0
    failed: int = 0
    retried: int = 0
    dropped: int = 0
    last_error: str = ""


def _thread_pool(workers: int) -> cf.Executor:
    return cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stormwatch-notify-send")


class Notifier:
    """Delivers pages to apprise targets without ever blocking its caller.

    ``retries`` are tries after the first; the n-th retry waits
    ``backoff * 2**(n-1)`` seconds (at most ``max_backoff``). ``timeout`` bounds
    each send: apprise's connect/read timeouts are lowered to it, and a send
    still running after it counts as failed (its thread is left to finish).
    """

    def __init__(
        self,
        urls: Iterable[str] = (),
        *,
        config_file: str | Path | None = None,
        retries: int = 3,
        backoff: float = 2.0,
        max_backoff: float = 300.0,
        timeout: float = 10.0,
        queue_size: int = 100,
        apprise_factory: Callable[[], Any] = apprise.Apprise,
        config_factory: Callable[[], Any] = apprise.AppriseConfig,
        executor_factory: Callable[[int], cf.Executor] = _thread_pool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._urls = tuple(urls)
        self._config_file = Path(config_file) if config_file else None
        self._retries = max(0, retries)
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._timeout = timeout
        self._queue_size = max(1, queue_size)
        self._apprise_factory = apprise_factory
        self._config_factory = config_factory
        self._executor_factory = executor_factory
        self._clock = clock
        self._cond = threading.Condition()
        self._incoming: deque[_Message] = deque()
        self._lanes: list[_Lane] | None = None
        self._problems: list[str] = []
        self._executor: cf.Executor | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._stop_deadline = 0.0
        self._dropped = 0
        self._undeliverable = 0

    @classmethod
    def from_settings(cls, settings: NotifySettings, extra_urls: Iterable[str] = ()) -> Notifier:
        return cls(
            (*settings.urls, *extra_urls),
            config_file=settings.config_file,
            retries=settings.retries,
            backoff=settings.backoff_seconds,
            timeout=settings.timeout_seconds,
        )

    # -- targets

    def load_targets(self) -> tuple[TargetInfo, ...]:
        """Parse the URLs and read the config file (once); every target, usable or not."""
        return tuple(lane.info for lane in self._load())

    def target_count(self) -> int:
        """How many targets can be sent to."""
        return sum(1 for lane in self._load() if lane.sender is not None)

    @property
    def problems(self) -> list[str]:
        """What is wrong with the targets (bad URLs, unreadable config file)."""
        self._load()
        return list(self._problems)

    def _load(self) -> list[_Lane]:
        if self._lanes is not None:
            return self._lanes
        targets, problems = parse_targets(
            self._urls,
            self._config_file,
            timeout=self._timeout,
            apprise_factory=self._apprise_factory,
            config_factory=self._config_factory,
        )
        lanes = [_Lane(t.info, t.sender) for t in targets]
        with self._cond:
            if self._lanes is None:
                self._lanes = lanes
                self._problems = problems
                for p in problems:
                    log.warning("notify: %s", p)
            return self._lanes

    # -- the caller's side

    def send(self, title: str, body: str, level: Level = "info") -> None:
        """Queue a message for every target and return at once.

        When the queue is full the oldest pending message is dropped (and counted).
        """
        with self._cond:
            if len(self._incoming) >= self._queue_size:
                old = self._incoming.popleft()
                self._dropped += 1
                log.warning("notify: queue full, dropped the oldest message %r", old.title)
            self._incoming.append(_Message(title, body, level))
            self._cond.notify_all()

    def send_now(self, title: str, body: str, level: Level = "info") -> list[SendResult]:
        """Send once to every target, in parallel, and wait (at most ``timeout``) for each.

        For ``stormwatch test-notify`` and ``rearm``'s all-clear: no retries, one result
        per target, in order; each logged under the message's title.
        """
        lanes = self._load()
        message = _Message(title, body, level)
        usable = [lane for lane in lanes if lane.sender is not None]
        executor = self._executor_factory(max(1, len(usable)))
        try:
            futures = {id(lane): executor.submit(_deliver, lane.sender, message) for lane in usable}
            cf.wait(futures.values(), timeout=self._timeout)
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
        results: list[SendResult] = []
        for lane in lanes:
            future = futures.get(id(lane))
            if future is None:
                results.append((lane.info.url, False, lane.info.error))
            elif not future.done():
                results.append((lane.info.url, False, f"no answer within {self._timeout:g} s"))
            else:
                ok, error = _result_of(future)
                results.append((lane.info.url, ok, error))
                if ok:
                    log.info("notify: %r sent to %s", title, lane.info.url)
                else:
                    log.warning("notify: %r to %s failed: %s", title, lane.info.url, error)
        return results

    def results(self) -> NotifierStats:
        """Counters so far, per target (URLs redacted)."""
        with self._cond:
            lanes = self._lanes or []
            targets = tuple(
                TargetStats(
                    url=lane.info.url,
                    sent=lane.sent,
                    failed=lane.failed,
                    retried=lane.retried,
                    dropped=lane.dropped,
                    pending=len(lane.queue),
                    last_error=lane.last_error or lane.info.error,
                )
                for lane in lanes
            )
            return NotifierStats(targets, self._dropped, self._undeliverable)

    # -- the worker's side

    def start(self) -> None:
        """Load the targets and start the one worker thread (once)."""
        if self._thread is not None:
            return
        self._load()
        self._thread = threading.Thread(target=self._run, name="stormwatch-notify", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Deliver what is pending for up to ``timeout`` seconds, then stop the worker.

        True when nothing was left pending.
        """
        with self._cond:
            self._stopping = True
            self._stop_deadline = self._clock() + timeout
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout + 1.0)
            if self._thread.is_alive():
                log.warning("notify: worker still busy after %g s; leaving it", timeout)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        with self._cond:
            return self._idle()

    def pump(self) -> float | None:
        """One scheduling pass: hand out due sends, collect finished ones, time out slow ones.

        Returns the seconds until another pass is needed (None: not until something
        is sent or a send finishes). The worker thread calls it; tests may too.
        """
        self._load()
        with self._cond:
            return self._pump(self._clock())

    def _run(self) -> None:
        while True:
            with self._cond:
                try:
                    delay = self._pump(self._clock())
                except Exception:
                    log.exception("notify: unexpected error in the worker; carrying on")
                    delay = 1.0
                if self._stopping:
                    now = self._clock()
                    if self._idle() or now >= self._stop_deadline:
                        return
                    left = self._stop_deadline - now
                    delay = left if delay is None else min(delay, left)
                self._cond.wait(timeout=delay)

    def _idle(self) -> bool:
        return not self._incoming and all(not lane.queue for lane in self._lanes or [])

    def _wake(self, _future: object) -> None:
        with self._cond:
            self._cond.notify_all()

    def _pump(self, now: float) -> float | None:
        lanes = self._lanes or []
        usable = [lane for lane in lanes if lane.sender is not None]
        while self._incoming:
            message = self._incoming.popleft()
            if not usable:
                self._undeliverable += 1
                log.warning("notify: no usable target; not sent: %r", message.title)
                continue
            for lane in usable:
                self._enqueue(lane, message, now)
        if self._executor is None and usable:
            self._executor = self._executor_factory(len(usable))
        wake: list[float] = []
        for lane in usable:
            future = lane.future
            if future is not None:
                if future.done():
                    self._finish(lane, future, now)
                elif lane.timed_out:
                    continue  # abandoned: its thread still runs; the lane waits for it
                elif now - lane.started >= self._timeout:
                    lane.timed_out = True
                    assert lane.inflight is not None
                    self._attempt_failed(
                        lane, lane.inflight, f"no answer within {self._timeout:g} s", now
                    )
                    continue
                else:
                    wake.append(lane.started + self._timeout)
                    continue
            if lane.queue:
                head = lane.queue[0]
                if head.due <= now:
                    self._submit(lane, head, now)
                    wake.append(now + self._timeout)
                else:
                    wake.append(head.due)
        if any(lane.future is not None and lane.future.done() for lane in usable):
            return 0.0
        return max(0.0, min(wake) - now) if wake else None

    def _enqueue(self, lane: _Lane, message: _Message, now: float) -> None:
        busy = bool(lane.queue) and lane.queue[0] is lane.inflight
        if len(lane.queue) - busy >= self._queue_size:
            index = 1 if busy else 0
            old = lane.queue[index]
            del lane.queue[index]
            lane.dropped += 1
            log.warning("notify: %s: queue full, dropped %r", lane.info.url, old.message.title)
        lane.queue.append(_Delivery(message, due=now))

    def _submit(self, lane: _Lane, delivery: _Delivery, now: float) -> None:
        assert self._executor is not None
        delivery.attempts += 1
        lane.inflight = delivery
        lane.started = now
        lane.timed_out = False
        lane.future = self._executor.submit(_deliver, lane.sender, delivery.message)
        lane.future.add_done_callback(self._wake)

    def _finish(self, lane: _Lane, future: cf.Future[tuple[bool, str]], now: float) -> None:
        delivery, timed_out = lane.inflight, lane.timed_out
        lane.future, lane.inflight, lane.timed_out = None, None, False
        assert delivery is not None
        ok, error = _result_of(future)
        still_queued = bool(lane.queue) and lane.queue[0] is delivery
        if ok:
            if still_queued:
                lane.queue.popleft()
                lane.sent += 1
                log.info(
                    "notify: sent %r to %s (attempt %d)",
                    delivery.message.title,
                    lane.info.url,
                    delivery.attempts,
                )
            else:
                log.info("notify: %s answered after it had been given up", lane.info.url)
        elif not timed_out:
            self._attempt_failed(lane, delivery, error, now)

    def _attempt_failed(self, lane: _Lane, delivery: _Delivery, error: str, now: float) -> None:
        lane.last_error = error
        if delivery.attempts > self._retries:
            if lane.queue and lane.queue[0] is delivery:
                lane.queue.popleft()
            lane.failed += 1
            log.error(
                "notify: giving up %r to %s after %d attempt(s): %s",
                delivery.message.title,
                lane.info.url,
                delivery.attempts,
                error,
            )
            return
        wait = min(self._max_backoff, self._backoff * 2 ** (delivery.attempts - 1))
        delivery.due = now + wait
        lane.retried += 1
        log.warning(
            "notify: sending %r to %s failed (attempt %d of %d): %s; retrying in %g s",
            delivery.message.title,
            lane.info.url,
            delivery.attempts,
            self._retries + 1,
            error,
            wait,
        )


def _deliver(sender: Any, message: _Message) -> tuple[bool, str]:
    """Runs in a pool thread: one send to one target."""
    try:
        result = sender.notify(
            body=message.body,
            title=message.title,
            notify_type=message.level,
            body_format="text",
        )
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"
    if result:
        return True, ""
    return False, _failure_reason(result)


def _failure_reason(result: Any) -> str:
    """The last message apprise logged for the failed service (apprise >= 2 results)."""
    reason = ""
    with contextlib.suppress(Exception):
        for service in result:
            for entry in service.logs():
                reason = str(getattr(entry, "message", "") or reason)
    return reason or "apprise reported a failure"


def _result_of(future: cf.Future[tuple[bool, str]]) -> tuple[bool, str]:
    try:
        return future.result(timeout=0)
    except cf.CancelledError:
        return False, "cancelled"
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"
