"""stop-fetchmail: stop the inflow, as the incident's admin did by hand (SIGINT).

Every fetchmail process (by process name or executable basename; only the
configured user's, if one is set) gets SIGINT; what still runs after
``sigterm_after_seconds`` gets SIGTERM; what still runs after that is reported
as still running, or gets SIGKILL if ``kill_after_seconds`` is set. SIGKILL is
off by default: it skips fetchmail's own cleanup (lock file, UID list), and a
process that survives SIGTERM is stuck in the kernel (SIGKILL would not help)
or is not the fetchmail we think: a human should look.

A process with an ESTABLISHED TCP connection is mid-poll (fetchmail holds
connections only while it polls). A poll cut short ends without the POP3 QUIT
(IMAP: without EXPUNGE), so the server undoes the poll's deletions and the same
messages come again when fetchmail restarts: the outcome says so.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

import psutil

from watcher.core.decide import Action
from watcher.core.incident import Incident
from watcher.core.settings import FetchmailSettings
from watcher.responders.base import Outcome

log = logging.getLogger(__name__)

KILL_WAIT_SECONDS = 5.0
POLL_SECONDS = 0.05
MAIL_PORTS = {110: "POP3", 995: "POP3S", 143: "IMAP", 993: "IMAPS"}
MID_POLL_NOTE = (
    "SIGINT in the middle of a poll ends fetchmail without the POP3 QUIT (IMAP: without"
    " EXPUNGE): the server undoes that poll's deletions, so the same messages will be"
    " fetched again when fetchmail restarts. Fix the cause first."
)

Ending = Literal[
    "exited after SIGINT",
    "exited after SIGTERM",
    "exited after SIGKILL",
    "still running",
    "vanished",
    "permission denied",
]
STOPPED: frozenset[str] = frozenset(
    {"exited after SIGINT", "exited after SIGTERM", "exited after SIGKILL", "vanished"}
)


class ProcessLike(Protocol):
    """What this module uses of :class:`psutil.Process`."""

    @property
    def pid(self) -> int: ...
    def name(self) -> str: ...
    def exe(self) -> str: ...
    def cmdline(self) -> list[str]: ...
    def username(self) -> str: ...
    def status(self) -> str: ...
    def is_running(self) -> bool: ...
    def send_signal(self, sig: int) -> None: ...
    def net_connections(self, kind: str = ...) -> Sequence[Any]: ...


@dataclass(slots=True)
class ProcessReport:
    """How one fetchmail process was stopped. ``mid_poll`` is None when it could not be told."""

    pid: int
    user: str
    cmdline: list[str]
    mid_poll: bool | None
    connections: list[str] = field(default_factory=list)
    signals: list[str] = field(default_factory=list)
    ended: Ending = "still running"
    seconds: float | None = None  # from the first SIGINT to when it was seen gone

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class FetchmailResponder:
    """``stop-fetchmail``. ``name`` is the process name to look for (tests use their own)."""

    kind: str = "stop-fetchmail"

    def __init__(
        self,
        settings: FetchmailSettings,
        *,
        process_iter: Callable[[], Iterable[ProcessLike]] = psutil.process_iter,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        name: str = "fetchmail",
    ) -> None:
        self.settings = settings
        self._process_iter = process_iter
        self._clock = clock
        self._sleep = sleep
        self._name = name

    def respond(self, action: Action, incident: Incident) -> Outcome:
        found, others = self.find()
        if not found:
            summary = f"no {self._name} running"
            if others:
                summary += f" as user {self.settings.user} ({others} of other users left alone)"
            return Outcome(self.kind, True, summary, {"processes": [], "other_users": others})
        reports = {id(p): self._snapshot(p) for p in found}
        start = self._clock()
        live = self._signal(found, reports, signal.SIGINT, "SIGINT")
        live = self._await(live, reports, self.settings.sigterm_after_seconds, "SIGINT", start)
        if live:
            live = self._signal(live, reports, signal.SIGTERM, "SIGTERM")
            wait = self.settings.kill_after_seconds or self.settings.sigterm_after_seconds
            live = self._await(live, reports, wait, "SIGTERM", start)
        if live and self.settings.kill_after_seconds is not None:
            live = self._signal(live, reports, signal.SIGKILL, "SIGKILL")
            live = self._await(live, reports, KILL_WAIT_SECONDS, "SIGKILL", start)
        return self._outcome([reports[id(p)] for p in found], others)

    def find(self) -> tuple[list[ProcessLike], int]:
        """Running fetchmail processes to stop, and how many of other users were left alone."""
        me = os.getpid()
        found: list[ProcessLike] = []
        others = 0
        for proc in self._process_iter():
            try:
                if proc.pid == me or not self._matches(proc):
                    continue
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue
                if self.settings.user and _user(proc) != self.settings.user:
                    others += 1
                    continue
            except psutil.Error:
                continue  # gone while we looked, or unreadable: not one we can tell is fetchmail
            found.append(proc)
        return found, others

    def _matches(self, proc: ProcessLike) -> bool:
        try:
            if proc.name() == self._name:
                return True
        except psutil.AccessDenied:
            pass
        try:
            return os.path.basename(proc.exe()) == self._name
        except (psutil.AccessDenied, psutil.ZombieProcess, OSError):
            return False

    def _snapshot(self, proc: ProcessLike) -> ProcessReport:
        try:
            cmdline = list(proc.cmdline())
        except psutil.Error:
            cmdline = []
        mid_poll: bool | None
        connections: list[str] = []
        try:
            for conn in proc.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_ESTABLISHED and conn.raddr:
                    ip, port = conn.raddr[0], conn.raddr[1]
                    proto = MAIL_PORTS.get(port)
                    connections.append(f"{ip}:{port}" + (f" ({proto})" if proto else ""))
            mid_poll = bool(connections)
        except psutil.Error:
            mid_poll = None
        return ProcessReport(proc.pid, _user(proc), cmdline, mid_poll, connections)

    def _signal(
        self,
        procs: Sequence[ProcessLike],
        reports: dict[int, ProcessReport],
        sig: int,
        sig_name: str,
    ) -> list[ProcessLike]:
        live = []
        for proc in procs:
            report = reports[id(proc)]
            try:
                proc.send_signal(sig)
            except psutil.NoSuchProcess:
                if not report.signals:
                    report.ended = "vanished"
                else:
                    report.ended = _exited_after(report.signals[-1])
                continue
            except psutil.AccessDenied:
                report.ended = "permission denied"
                log.warning("cannot signal %s pid %d: permission denied", self._name, proc.pid)
                continue
            report.signals.append(sig_name)
            log.info("sent %s to %s pid %d", sig_name, self._name, proc.pid)
            live.append(proc)
        return live

    def _await(
        self,
        procs: Sequence[ProcessLike],
        reports: dict[int, ProcessReport],
        seconds: float,
        after: str,
        start: float,
    ) -> list[ProcessLike]:
        """Wait up to ``seconds`` for ``procs`` to end; returns those still running."""
        deadline = self._clock() + seconds
        live = list(procs)
        while True:
            now = self._clock()
            still = []
            for proc in live:
                if _running(proc):
                    still.append(proc)
                else:
                    report = reports[id(proc)]
                    report.ended = _exited_after(after)
                    report.seconds = round(now - start, 3)
                    log.info("%s pid %d %s", self._name, proc.pid, report.ended)
            live = still
            if not live or now >= deadline:
                return live
            self._sleep(min(POLL_SECONDS, deadline - now))

    def _outcome(self, reports: list[ProcessReport], others: int) -> Outcome:
        for r in reports:
            if r.ended == "still running":
                log.error("%s pid %d is still running after %s", self._name, r.pid, r.signals)
        ok = all(r.ended in STOPPED for r in reports)
        parts = [f"pid {r.pid} {r.ended}" for r in reports]
        n = len(reports)
        stopped = sum(r.ended in STOPPED for r in reports)
        summary = f"stopped {stopped} of {n} {self._name} process(es): " + "; ".join(parts)
        mid = [r.pid for r in reports if r.mid_poll]
        details: dict[str, object] = {
            "processes": [r.as_dict() for r in reports],
            "other_users": others,
            "mid_poll_pids": mid,
        }
        if mid:
            summary += f"; mid-poll: pid {', '.join(map(str, mid))} (its mail comes again)"
            details["note"] = MID_POLL_NOTE
        return Outcome(self.kind, ok, summary, details)


def _exited_after(sig_name: str) -> Ending:
    if sig_name == "SIGKILL":
        return "exited after SIGKILL"
    if sig_name == "SIGTERM":
        return "exited after SIGTERM"
    return "exited after SIGINT"


def _user(proc: ProcessLike) -> str:
    try:
        return proc.username()
    except (psutil.Error, KeyError):
        return "?"


def _running(proc: ProcessLike) -> bool:
    """Still running; a zombie (exited, not yet reaped by its parent) has ended."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
