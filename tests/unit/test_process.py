"""stop-fetchmail with fake processes, a fake clock and a sleep that advances it."""

from __future__ import annotations

import json
import signal
from collections.abc import Sequence
from typing import Any, NamedTuple

import psutil
import pytest

from tests.incidents import make_incident
from watcher.core.decide import Action
from watcher.core.settings import FetchmailSettings
from watcher.responders.process import MID_POLL_NOTE, FetchmailResponder, ProcessLike

ACTION = Action("stop-fetchmail", "trip", "forwarding-loop", 0, 100, 100, 300.0)
INCIDENT = make_incident(
    id="i",
    rule="forwarding-loop",
    description="",
    count=100,
    threshold=100,
    window_seconds=300.0,
    first_time="t0",
    trip_time="t1",
    trip_line="line",
)


class Addr(NamedTuple):
    ip: str
    port: int


class Conn(NamedTuple):
    status: str
    raddr: Addr | tuple[()]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


class FakeProc:
    """Exits ``delay`` seconds after a signal it obeys; ``obeys`` lists those signals."""

    def __init__(
        self,
        clock: Clock,
        pid: int,
        *,
        name: str = "fetchmail",
        exe: str = "/usr/bin/fetchmail",
        user: str = "fetchmail",
        obeys: Sequence[int] = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL),
        delay: float = 0.2,
        conns: Sequence[Conn] = (),
        deny_signals: bool = False,
        deny_connections: bool = False,
        vanish_on_signal: bool = False,
        zombie: bool = False,
    ) -> None:
        self.clock = clock
        self._pid = pid
        self._name = name
        self._exe = exe
        self.user = user
        self.obeys = set(obeys)
        self.delay = delay
        self.conns = list(conns)
        self.deny_signals = deny_signals
        self.deny_connections = deny_connections
        self.vanish = False
        self.vanish_on_signal = vanish_on_signal
        self.zombie = zombie
        self.signals: list[int] = []
        self.exits_at: float | None = None

    @property
    def pid(self) -> int:
        return self._pid

    def _gone(self) -> bool:
        return self.vanish or (self.exits_at is not None and self.clock.now >= self.exits_at)

    def name(self) -> str:
        return self._name

    def exe(self) -> str:
        if self._exe == "denied":
            raise psutil.AccessDenied(self._pid)
        return self._exe

    def cmdline(self) -> list[str]:
        return [self._exe, "--daemon", "300"]

    def username(self) -> str:
        return self.user

    def status(self) -> str:
        if self.zombie or self._gone():
            return psutil.STATUS_ZOMBIE  # exited, not reaped yet
        return psutil.STATUS_SLEEPING

    def is_running(self) -> bool:
        return not self.vanish

    def send_signal(self, sig: int) -> None:
        if self.vanish_on_signal:
            self.vanish = True
        if self.vanish:
            raise psutil.NoSuchProcess(self._pid)
        if self.deny_signals:
            raise psutil.AccessDenied(self._pid)
        self.signals.append(sig)
        if sig in self.obeys and self.exits_at is None:
            self.exits_at = self.clock.now + self.delay

    def net_connections(self, kind: str = "inet") -> list[Any]:
        assert kind == "tcp"
        if self.deny_connections:
            raise psutil.AccessDenied(self._pid)
        return list(self.conns)


def make(clock: Clock, procs: Sequence[FakeProc], **settings: Any) -> FetchmailResponder:
    def process_iter() -> list[ProcessLike]:
        return list(procs)

    return FetchmailResponder(
        FetchmailSettings(**settings), process_iter=process_iter, clock=clock, sleep=clock.sleep
    )


def processes(outcome_details: dict[str, object]) -> list[dict[str, Any]]:
    procs = outcome_details["processes"]
    assert isinstance(procs, list)
    return procs


def test_none_running_is_an_ok_outcome() -> None:
    clock = Clock()
    other = FakeProc(clock, 7, name="postfix", exe="/usr/lib/postfix/sbin/master")
    outcome = make(clock, [other]).respond(ACTION, INCIDENT)
    assert outcome.ok
    assert outcome.summary == "no fetchmail running"
    assert other.signals == []


def test_sigint_stops_fetchmail_and_reports_each_pid() -> None:
    clock = Clock()
    a = FakeProc(clock, 5481, delay=0.2)
    b = FakeProc(clock, 5482, name="fetchmail-bin", exe="/opt/x/fetchmail", user="alice")
    outcome = make(clock, [a, b]).respond(ACTION, INCIDENT)
    assert outcome.ok, outcome
    assert a.signals == [signal.SIGINT]
    assert b.signals == [signal.SIGINT]  # matched by the executable's basename
    assert outcome.summary == (
        "stopped 2 of 2 fetchmail process(es): pid 5481 exited after SIGINT; "
        "pid 5482 exited after SIGINT"
    )
    first = processes(outcome.details)[0]
    assert first == {
        "pid": 5481,
        "user": "fetchmail",
        "cmdline": ["/usr/bin/fetchmail", "--daemon", "300"],
        "mid_poll": False,
        "connections": [],
        "signals": ["SIGINT"],
        "ended": "exited after SIGINT",
        "seconds": pytest.approx(0.2, abs=0.06),
    }
    assert processes(outcome.details)[1]["user"] == "alice"
    json.dumps(outcome.details)


def test_ignoring_sigint_escalates_to_sigterm_after_the_configured_wait() -> None:
    clock = Clock()
    stubborn = FakeProc(clock, 10, obeys=(signal.SIGTERM,), delay=1.0)
    start = clock.now
    outcome = make(clock, [stubborn], sigterm_after_seconds=4).respond(ACTION, INCIDENT)
    assert outcome.ok
    assert stubborn.signals == [signal.SIGINT, signal.SIGTERM]
    report = processes(outcome.details)[0]
    assert report["ended"] == "exited after SIGTERM"
    assert report["signals"] == ["SIGINT", "SIGTERM"]
    assert report["seconds"] == pytest.approx(5.0, abs=0.06)
    assert clock.now - start == pytest.approx(5.0, abs=0.06)
    assert max(clock.sleeps) <= 0.05 + 1e-9  # polls, never one long sleep


def test_still_running_after_sigterm_is_a_failure_and_no_sigkill_by_default() -> None:
    clock = Clock()
    stuck = FakeProc(clock, 11, obeys=())
    outcome = make(clock, [stuck], sigterm_after_seconds=2).respond(ACTION, INCIDENT)
    assert not outcome.ok
    assert stuck.signals == [signal.SIGINT, signal.SIGTERM]
    assert processes(outcome.details)[0]["ended"] == "still running"
    assert "pid 11 still running" in outcome.summary


def test_sigkill_only_when_configured() -> None:
    clock = Clock()
    stuck = FakeProc(clock, 12, obeys=(signal.SIGKILL,), delay=0.0)
    outcome = make(clock, [stuck], sigterm_after_seconds=1, kill_after_seconds=3).respond(
        ACTION, INCIDENT
    )
    assert outcome.ok
    assert stuck.signals == [signal.SIGINT, signal.SIGTERM, signal.SIGKILL]
    assert processes(outcome.details)[0]["ended"] == "exited after SIGKILL"


def test_only_the_configured_users_processes() -> None:
    clock = Clock()
    mine = FakeProc(clock, 20, user="fetchmail")
    theirs = FakeProc(clock, 21, user="bob")
    outcome = make(clock, [mine, theirs], user="fetchmail").respond(ACTION, INCIDENT)
    assert outcome.ok
    assert mine.signals == [signal.SIGINT]
    assert theirs.signals == []
    assert outcome.details["other_users"] == 1

    only_theirs = make(clock, [theirs], user="fetchmail").respond(ACTION, INCIDENT)
    assert only_theirs.ok
    assert (
        only_theirs.summary
        == "no fetchmail running as user fetchmail (1 of other users left alone)"
    )


def test_vanished_permission_denied_zombies_and_unreadable_exe() -> None:
    clock = Clock()
    gone = FakeProc(clock, 30, vanish_on_signal=True)  # exits between listing and signal
    denied = FakeProc(clock, 31, deny_signals=True, user="root")
    zombie = FakeProc(clock, 32, zombie=True)  # already exited: not one to stop
    other = FakeProc(clock, 33, name="python3", exe="denied")
    responder = make(clock, [gone, denied, zombie, other])
    assert [p.pid for p in responder.find()[0]] == [30, 31]
    outcome = responder.respond(ACTION, INCIDENT)
    ended = {p["pid"]: p["ended"] for p in processes(outcome.details)}
    assert ended == {30: "vanished", 31: "permission denied"}
    assert not outcome.ok  # pid 31 may still run
    assert outcome.summary == (
        "stopped 1 of 2 fetchmail process(es): pid 30 vanished; pid 31 permission denied"
    )


def test_mid_poll_is_reported_with_the_redelivery_note() -> None:
    clock = Clock()
    polling = FakeProc(
        clock,
        50,
        conns=[
            Conn(psutil.CONN_ESTABLISHED, Addr("192.0.2.1", 995)),
            Conn(psutil.CONN_LISTEN, ()),
        ],
    )
    idle = FakeProc(clock, 51, conns=[Conn(psutil.CONN_CLOSE_WAIT, Addr("192.0.2.1", 110))])
    unknown = FakeProc(clock, 52, deny_connections=True)
    outcome = make(clock, [polling, idle, unknown]).respond(ACTION, INCIDENT)
    assert outcome.ok
    reports = {p["pid"]: p for p in processes(outcome.details)}
    assert reports[50]["mid_poll"] is True
    assert reports[50]["connections"] == ["192.0.2.1:995 (POP3S)"]
    assert reports[51]["mid_poll"] is False
    assert reports[52]["mid_poll"] is None
    assert outcome.details["mid_poll_pids"] == [50]
    assert outcome.details["note"] == MID_POLL_NOTE
    assert "mid-poll: pid 50" in outcome.summary
    json.dumps(outcome.details)


def test_the_real_psutil_process_iter_is_the_default() -> None:
    responder = FetchmailResponder(FetchmailSettings(), name="no-such-process-name-xyz")
    found, others = responder.find()
    assert (found, others) == ([], 0)
