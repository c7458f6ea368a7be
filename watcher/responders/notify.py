"""The notify responder: pages through apprise, in the background, and what pages say.

Rendering is pure (``render_*`` return ``(title, body)`` as plain text: a log
line's addresses appear verbatim, only control and bidi characters are shown
as escapes, by :func:`watcher.core.text.visible`). :class:`Notifier`
delivers: ``send()`` only queues; one worker thread schedules, and each target
has its own lane (one send in flight at a time, in a small pool) with its own
retries, backoff and per-send timeout, so a slow or dead target delays neither
the caller nor the other targets.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import apprise

from watcher.core.decide import Action
from watcher.core.incident import Incident
from watcher.core.settings import NotifySettings
from watcher.core.text import visible
from watcher.responders.base import Level, Outcome

log = logging.getLogger(__name__)

SendResult = tuple[str, bool, str]  # (redacted URL, ok, error)

MAIL_SCHEMES = frozenset({"mailto", "mailtos"})
REARM = (
    "Re-arm once the cause is fixed: stormwatch rearm "
    "(--keep-held keeps the storm's mail on hold, --release-held lets it go)"
)
MAX_LINE_CHARS = 4000
TOP_DOMAINS = 8
PREFIX = "[stormwatch]"


# ---------------------------------------------------------------- rendering


def _line(text: str) -> str:
    if len(text) > MAX_LINE_CHARS:
        more = len(text) - MAX_LINE_CHARS
        return f"{visible(text[:MAX_LINE_CHARS])} ... [{more} more characters]"
    return visible(text)


def _on(host: str) -> str:
    return f" on {visible(host)}" if host else ""


def _duration(seconds: float) -> str:
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    minutes, _ = divmod(s, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _counts(incident: Incident, what: str) -> str:
    return f"{incident.count} in {incident.window_seconds:g} s ({what} {incident.threshold})"


def _domains(incident: Incident) -> list[str]:
    if not incident.top_domains:
        return []
    shown = incident.top_domains[:TOP_DOMAINS]
    lines = ["Top destination domains:"]
    lines += [f"  {visible(domain)}: {n}" for domain, n in shown]
    if len(incident.top_domains) > len(shown):
        lines.append(f"  (+{len(incident.top_domains) - len(shown)} more)")
    return ["", *lines]


def _outcome_line(o: Outcome) -> str:
    summary = visible(re.sub(r"\s*[\r\n]+\s*", " / ", o.summary.strip()))
    return f"  {'ok    ' if o.ok else 'FAILED'} {visible(o.kind)}: {summary}"


def render_page(incident: Incident, outcomes: Sequence[Outcome]) -> tuple[str, str]:
    """The page sent when the switch trips: what happened, what was done, what failed."""
    failed = [o for o in outcomes if not o.ok]
    title = (
        f"{PREFIX} TRIPPED{_on(incident.host)}: {visible(incident.rule)}, "
        f"{incident.count} in {incident.window_seconds:g} s"
    )
    if failed:
        title += f", {len(failed)} action(s) FAILED"
    body = [
        f"Kill switch TRIPPED{_on(incident.host)} by rule {visible(incident.rule)}.",
    ]
    if incident.description:
        body.append(visible(incident.description))
    body += [
        f"Count: {_counts(incident, 'threshold')}",
        f"First match: {visible(incident.first_time)} (log time)",
        f"Trip line:   {visible(incident.trip_time)} (log time)",
        f"Incident: {visible(incident.id)}",
        *_domains(incident),
        "",
        "What the kill switch did:",
    ]
    if outcomes:
        body += [_outcome_line(o) for o in outcomes]
        body.append(
            f"{len(failed)} of {len(outcomes)} action(s) FAILED: see above."
            if failed
            else "Every action succeeded."
        )
    else:
        body.append("  (no action has reported yet)")
    body += ["", "The line that tripped it, verbatim:", _line(incident.trip_line)]
    if incident.report_summary or incident.report_dir:
        body += ["", "Report:"]
        body += [f"  {visible(line)}" for line in incident.report_summary]
        if incident.report_dir:
            body.append(f"  Full report: {visible(incident.report_dir)}/report.md")
    body += ["", REARM]
    return title, "\n".join(body)


def render_warning(incident: Incident) -> tuple[str, str]:
    """An early warning: the count reached the rule's warn level (``incident.threshold``)."""
    title = (
        f"{PREFIX} warning{_on(incident.host)}: {visible(incident.rule)}, "
        f"{incident.count} in {incident.window_seconds:g} s"
    )
    body = [
        f"Rule {visible(incident.rule)} is close to tripping{_on(incident.host)}.",
        "The kill switch has NOT tripped: nothing was stopped.",
    ]
    if incident.description:
        body.append(visible(incident.description))
    body += [
        f"Count: {_counts(incident, 'warns at')}",
        f"First match: {visible(incident.first_time)} (log time)",
        f"Latest:      {visible(incident.trip_time)} (log time)",
        *_domains(incident),
        "",
        "The latest matching line, verbatim:",
        _line(incident.trip_line),
        "",
        'To stop everything now: stormwatch trip --reason "..."',
    ]
    return title, "\n".join(body)


def render_reminder(
    incident: Incident, since: timedelta, *, held_count: int | None = None
) -> tuple[str, str]:
    """A reminder while tripped; ``since`` is how long the switch has been tripped."""
    ago = _duration(since.total_seconds())
    title = f"{PREFIX} still TRIPPED{_on(incident.host)}: {visible(incident.rule)}, for {ago}"
    body = [
        f"The kill switch{_on(incident.host)} has been tripped for {ago} "
        f"(rule {visible(incident.rule)}, tripped at {visible(incident.trip_time)} log time).",
        "What it stopped stays stopped until a human re-arms it.",
        f"Count when it tripped: {_counts(incident, 'threshold')}",
        f"Incident: {visible(incident.id)}",
    ]
    if held_count is not None:
        body.append(f"Messages on hold: {held_count}")
    body += ["", REARM]
    return title, "\n".join(body)


def render_all_clear(incident: Incident, released_count: int, held_count: int) -> tuple[str, str]:
    """Sent by ``rearm``: the switch is re-armed and watching again."""
    title = f"{PREFIX} re-armed{_on(incident.host)}: {visible(incident.rule)}"
    body = [
        f"The kill switch{_on(incident.host)} was re-armed and is watching again "
        f"(incident {visible(incident.id)}, rule {visible(incident.rule)}).",
        "What the trip changed has been undone.",
        f"Released from hold back into the queue: {released_count}",
        f"Still on hold: {held_count}",
    ]
    if held_count:
        body += [
            "The messages still on hold are the storm's bounces and looping originals: held",
            "mail never expires. See them with: postqueue -j ; release one with: postsuper -H ID",
        ]
    return title, "\n".join(body)


def render_log_loss(lost: int, first_line: str, *, host: str = "") -> tuple[str, str]:
    """The system logger dropped lines (rsyslog rate limit, journald suppression).

    ``first_line`` is the line that reported the loss, shown verbatim.
    """
    n = str(lost) if lost > 0 else "some"
    title = f"{PREFIX} partly blind{_on(host)}: {n} log line(s) lost"
    body = [
        f"The system logger{_on(host)} dropped {n} log line(s) before stormwatch could read them.",
        "The watcher is partly blind: window counts may be too low, so a storm can trip",
        "late or not at all.",
        "",
        "Reported by:",
        _line(first_line),
        "",
        "Fix: raise rsyslog's rate limits (imuxsock/imjournal ratelimit.burst) or journald's",
        "RateLimitBurst, or let Postfix write its own log (maillog_file) for stormwatch to follow.",
    ]
    return title, "\n".join(body)


# ---------------------------------------------------------------- targets

_USERINFO = re.compile(
    r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/@?#]*)(?P<password>:[^/@?#]*)?@"
)
_SECRET_PARAM = re.compile(
    r"(?P<key>[?&](?:[^=&#]*(?:pass|token|secret|key|auth|sig|pwd|apikey)[^=&#]*))=[^&#]*",
    re.IGNORECASE,
)
_LONG_TOKEN = re.compile(r"(?<=/)[A-Za-z0-9_:-]{16,}")


def redact_url(url: str) -> str:
    """``url`` safe to log: apprise's privacy form, or passwords/tokens masked by hand."""
    plugin = None
    with contextlib.suppress(Exception):
        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    text = _privacy_url(plugin)
    return text or _redact_by_hand(url)


def _redact_by_hand(url: str) -> str:
    def userinfo(m: re.Match[str]) -> str:
        user = m.group("user")
        if m.group("password"):
            return f"{m.group('scheme')}{user}:****@"
        return f"{m.group('scheme')}****@" if len(user) >= 16 else m.group(0)

    out = _USERINFO.sub(userinfo, url)
    out = _SECRET_PARAM.sub(lambda m: f"{m.group('key')}=****", out)
    return _LONG_TOKEN.sub("****", out)


def _privacy_url(plugin: Any) -> str:
    if plugin is None:
        return ""
    try:
        return str(plugin.url(privacy=True))
    except Exception:
        return ""


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


@dataclass(frozen=True, slots=True)
class TargetInfo:
    """One notification target. ``url`` is redacted; ``error`` says why it cannot be used."""

    url: str
    scheme: str
    smtp_host: str = ""
    error: str = ""


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed target: what to show of it, and an Apprise holding it alone to send with."""

    info: TargetInfo
    sender: Any  # None when the target cannot be used (``info.error`` says why)


def parse_targets(
    urls: Iterable[str],
    config_file: str | Path | None,
    *,
    timeout: float = 10.0,
    apprise_factory: Callable[[], Any] = apprise.Apprise,
    config_factory: Callable[[], Any] = apprise.AppriseConfig,
) -> tuple[list[Target], list[str]]:
    """Every target of ``urls`` and of ``config_file`` (read here), and what is wrong with them.

    Each target gets its own Apprise, its connect/read timeouts lowered to ``timeout``.
    """
    problems: list[str] = []
    targets = [_target_for_url(url, problems, timeout, apprise_factory) for url in urls]
    if config_file:
        targets += _targets_from_config(
            Path(config_file), problems, timeout, apprise_factory, config_factory
        )
    return targets, problems


def _target_for_url(
    url: str, problems: list[str], timeout: float, apprise_factory: Callable[[], Any]
) -> Target:
    redacted = redact_url(url)
    sender = apprise_factory()
    error = "not a valid apprise URL (or its notification service is unavailable)"
    try:
        ok = bool(sender.add(url))
    except Exception as exc:
        ok = False
        error = f"apprise could not load it: {type(exc).__name__}: {exc}"
    if not ok:
        problems.append(f"{redacted}: {error}")
        return Target(TargetInfo(redacted, _scheme(url), error=error), None)
    return _target_for_sender(sender, redacted, timeout)


def _targets_from_config(
    path: Path,
    problems: list[str],
    timeout: float,
    apprise_factory: Callable[[], Any],
    config_factory: Callable[[], Any],
) -> list[Target]:
    try:
        path.open("rb").close()
    except OSError as exc:
        problems.append(f"apprise config file {path}: cannot read: {exc.strerror or exc}")
        return []
    try:
        config = config_factory()
        config.add(str(path))
        listing = getattr(config, "services", None) or config.servers  # apprise 2 / 1
        servers = list(listing())
    except Exception as exc:
        problems.append(f"apprise config file {path}: cannot load: {exc}")
        return []
    if not servers:
        problems.append(f"apprise config file {path}: no usable notification URL in it")
    targets = []
    for i, plugin in enumerate(servers, 1):
        sender = apprise_factory()
        if not sender.add(plugin):
            problems.append(f"apprise config file {path}: entry {i} is not usable")
            continue
        targets.append(_target_for_sender(sender, _privacy_url(plugin) or f"{path} #{i}", timeout))
    return targets


def _target_for_sender(sender: Any, redacted: str, timeout: float) -> Target:
    plugins: list[Any] = []
    with contextlib.suppress(Exception):
        plugins = list(sender)
    smtp_host = ""
    scheme = _scheme(redacted)
    for plugin in plugins:
        redacted = _privacy_url(plugin) or redacted
        scheme = _scheme(redacted) or scheme
        smtp_host = str(getattr(plugin, "smtp_host", "") or "")
        for attr in ("socket_connect_timeout", "socket_read_timeout"):
            current = getattr(plugin, attr, None)
            if isinstance(current, int | float) and current > timeout:
                with contextlib.suppress(Exception):
                    setattr(plugin, attr, timeout)
    if scheme not in MAIL_SCHEMES:
        smtp_host = ""
    return Target(TargetInfo(redacted, scheme, smtp_host), sender)


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

        For ``stormwatch test-notify``: no retries, one result per target, in order.
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
                    log.info("notify: test message sent to %s", lane.info.url)
                else:
                    log.warning("notify: test message to %s failed: %s", lane.info.url, error)
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


# ---------------------------------------------------------------- the responder


def _no_outcomes() -> Sequence[Outcome]:
    return ()


class NotifyResponder:
    """``notify``: queues the page (or the warning) and returns at once.

    ``outcomes`` returns what the other responders of this trip reported so
    far; the page lists them, so run this responder after them.
    """

    kind: str = "notify"

    def __init__(
        self, notifier: Notifier, *, outcomes: Callable[[], Sequence[Outcome]] = _no_outcomes
    ) -> None:
        self.notifier = notifier
        self._outcomes = outcomes

    def respond(self, action: Action, incident: Incident) -> Outcome:
        level: Level
        if action.severity == "warn":
            title, body = render_warning(incident)
            level = "warning"
        else:
            title, body = render_page(incident, self._outcomes())
            level = "failure"
        targets = self.notifier.target_count()
        details: dict[str, object] = {
            "targets": targets,
            "severity": action.severity,
            "title": title,
        }
        problems = self.notifier.problems
        if problems:
            details["problems"] = problems
        if not targets:
            return Outcome(self.kind, False, "no notification target: nobody was paged", details)
        self.notifier.send(title, body, level)
        what = "warning" if action.severity == "warn" else "page"
        return Outcome(self.kind, True, f"{what} queued for {targets} target(s)", details)


# ---------------------------------------------------------------- config check


_LOCAL = frozenset({"localhost", "localhost.localdomain", "::1", "ip6-localhost"})


def check_targets(
    urls: Sequence[str],
    config_file: str | Path | None,
    *,
    hostname: str | None = None,
    config_factory: Callable[[], Any] = apprise.AppriseConfig,
) -> list[str]:
    """Warnings about the notification targets, for the config check.

    Reads ``config_file`` if given. Warns when there is no usable target, about
    each unusable one, and when every target is e-mail: a page by mail goes
    through Postfix, the very thing the kill switch is about to freeze.
    """
    parsed, problems = parse_targets(urls, config_file, config_factory=config_factory)
    for p in problems:
        log.warning("notify: %s", p)
    warnings = list(problems)
    usable = [t.info for t in parsed if not t.info.error]
    if not usable:
        warnings.append(
            "no notification target: a trip will page nobody "
            "(set [notify] urls or config_file, or pass --notify URL)"
        )
        return warnings
    if all(t.scheme in MAIL_SCHEMES for t in usable):
        names = {hostname if hostname is not None else socket.gethostname()} | _LOCAL
        local = sorted(
            {
                t.smtp_host
                for t in usable
                if t.smtp_host.lower() in names or t.smtp_host.startswith("127.")
            }
        )
        servers = ", ".join(sorted({t.smtp_host for t in usable if t.smtp_host})) or "?"
        why = (
            f"the page would go out through this host's Postfix (SMTP server {', '.join(local)}),"
            " which the kill switch freezes when it trips: it would sit in the queue."
            if local
            else f"if the SMTP server ({servers}) relays through this host, or the mailbox is"
            " here, the page goes through this Postfix, which the kill switch freezes when it"
            " trips."
        )
        warnings.append(
            f"every notification target is e-mail (mailto:// or mailtos://): {why} Add a target"
            " that does not go through Postfix (ntfy://, gotify://, a json:// webhook, ...)."
        )
    return warnings
