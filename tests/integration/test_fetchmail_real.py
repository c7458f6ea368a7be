"""stop-fetchmail against real processes: a real fetchmail daemon, and children that ignore SIGINT.

The responder runs with the real psutil, real signals and real processes; its
``process_iter`` is narrowed to this test's own children so that it can never
signal a fetchmail (or anything else) that another test or user runs on the
same machine. The SIGINT-ignoring child renames itself (``/proc/self/comm``)
to a name no other process has, and the responder is told to look for it.
"""

from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.incidents import make_incident
from tests.integration.harness.requires import require_programs, wait_for
from watcher.core.decide import Action
from watcher.core.settings import FetchmailSettings
from watcher.responders.base import Outcome
from watcher.responders.process import MID_POLL_NOTE, FetchmailResponder

pytestmark = pytest.mark.integration

LOOPBACK = "127.0.0.1"
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
# Ignores SIGINT (and SIGTERM if asked), then takes the name it is given and waits.
STUBBORN = """
import signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
if sys.argv[2] == "term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
with open("/proc/self/comm", "w") as comm:
    comm.write(sys.argv[1])
while True:
    signal.pause()
"""


def our_children() -> list[psutil.Process]:
    """Only processes this test started: the responder must not touch anyone else's."""
    return psutil.Process().children(recursive=True)


def only_report(outcome: Outcome) -> dict[str, object]:
    procs = outcome.details["processes"]
    assert isinstance(procs, list), procs
    assert len(procs) == 1, procs
    report = procs[0]
    assert isinstance(report, dict)
    return report


def me() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


class Fetchmail:
    """``fetchmail --nodetach --daemon 300 -f RCFILE`` with its own HOME, polling ``port``."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.out = root / "fetchmail.out"
        rcfile = root / "fetchmailrc"
        rcfile.write_text(
            "set no bouncemail\n"
            "set no syslog\n"
            f"poll {LOOPBACK} service {port} protocol pop3 auth password timeout 60:\n"
            '  user "storm" there with password "secret" is "root" here\n'
            "  sslproto ''\n",
            encoding="utf-8",
        )
        rcfile.chmod(0o600)  # fetchmail refuses an rcfile that others can read
        binary = require_programs("fetchmail")["fetchmail"]
        self.argv = [binary, "--nodetach", "--daemon", "300", "-v", "-f", str(rcfile)]
        env = {
            "HOME": str(root),
            "FETCHMAILHOME": str(root),
            "PATH": os.environ.get("PATH", os.defpath),
            "LANG": "C",
            "LC_ALL": "C",
        }
        with self.out.open("wb") as out:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=root,
                env=env,
            )

    def output(self) -> str:
        return self.out.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port that is bound but never listens: fetchmail's poll fails at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        yield sock.getsockname()[1]


@pytest.fixture
def silent_pop3() -> Iterator[int]:
    """A loopback port that accepts connections and never says a word: a poll that hangs."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_a_sleeping_fetchmail_daemon_gets_sigint_and_exits(
    tmp_path: Path, refused_port: int
) -> None:
    fetchmail = Fetchmail(tmp_path, refused_port)
    try:
        wait_for(
            lambda: "sleeping at" in fetchmail.output() or fetchmail.proc.poll() is not None,
            15.0,
            "fetchmail to finish its first poll and sleep",
            seen=fetchmail.output,
        )
        assert fetchmail.proc.poll() is None, f"fetchmail exited at start:\n{fetchmail.output()}"

        responder = FetchmailResponder(
            FetchmailSettings(sigterm_after_seconds=10), process_iter=our_children
        )
        outcome = responder.respond(ACTION, INCIDENT)

        assert outcome.ok, outcome
        assert (
            outcome.summary
            == f"stopped 1 of 1 fetchmail process(es): pid {fetchmail.proc.pid} exited after SIGINT"
        )
        report = only_report(outcome)
        seconds = report.pop("seconds")
        assert isinstance(seconds, float)
        assert seconds < 10
        assert report == {
            "pid": fetchmail.proc.pid,
            "user": me(),
            "cmdline": fetchmail.argv,
            "mid_poll": False,
            "connections": [],
            "signals": ["SIGINT"],
            "ended": "exited after SIGINT",
        }
        assert "note" not in outcome.details
        assert fetchmail.proc.wait(10) is not None
        assert "terminated with signal 2" in fetchmail.output()
    finally:
        fetchmail.stop()


def test_a_fetchmail_mid_poll_is_reported_as_such(tmp_path: Path, silent_pop3: int) -> None:
    fetchmail = Fetchmail(tmp_path, silent_pop3)
    try:

        def connected() -> bool:
            conns = psutil.Process(fetchmail.proc.pid).net_connections(kind="tcp")
            return any(
                c.status == psutil.CONN_ESTABLISHED and c.raddr and c.raddr[1] == silent_pop3
                for c in conns
            )

        wait_for(connected, 15.0, "fetchmail to connect to the POP3 port", seen=fetchmail.output)
        outcome = FetchmailResponder(
            FetchmailSettings(sigterm_after_seconds=10), process_iter=our_children
        ).respond(ACTION, INCIDENT)
        assert outcome.ok, outcome
        report = only_report(outcome)
        assert report["mid_poll"] is True
        assert report["connections"] == [f"{LOOPBACK}:{silent_pop3}"]
        assert report["ended"] == "exited after SIGINT"
        assert outcome.details["mid_poll_pids"] == [fetchmail.proc.pid]
        assert outcome.details["note"] == MID_POLL_NOTE
        assert f"mid-poll: pid {fetchmail.proc.pid}" in outcome.summary
        fetchmail.proc.wait(10)
        assert "terminated with signal 2" in fetchmail.output()
    finally:
        fetchmail.stop()


@pytest.mark.parametrize(
    ("ignores", "kill_after", "ended", "signals", "returncode"),
    [
        ("int", None, "exited after SIGTERM", ["SIGINT", "SIGTERM"], -signal.SIGTERM),
        ("term", None, "still running", ["SIGINT", "SIGTERM"], None),
        ("term", 0.3, "exited after SIGKILL", ["SIGINT", "SIGTERM", "SIGKILL"], -signal.SIGKILL),
    ],
)
def test_escalation_on_a_process_that_ignores_sigint(
    ignores: str,
    kill_after: float | None,
    ended: str,
    signals: list[str],
    returncode: int | None,
) -> None:
    name = f"sw-noint-{os.getpid() % 100000}"
    stubborn = subprocess.Popen([sys.executable, "-c", STUBBORN, name, ignores])
    bystander = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
    try:
        wait_for(
            lambda: psutil.Process(stubborn.pid).name() == name,
            10.0,
            f"the child to ignore SIGINT and call itself {name}",
            seen=lambda: psutil.Process(stubborn.pid).name(),
        )
        responder = FetchmailResponder(
            FetchmailSettings(sigterm_after_seconds=0.3, kill_after_seconds=kill_after),
            process_iter=our_children,
            name=name,
        )
        outcome = responder.respond(ACTION, INCIDENT)
        report = only_report(outcome)
        assert (report["pid"], report["ended"], report["signals"]) == (stubborn.pid, ended, signals)
        assert outcome.ok is (returncode is not None)
        if returncode is None:
            assert stubborn.poll() is None, "it was reported still running, and must be"
        else:
            assert stubborn.wait(10) == returncode
        assert bystander.poll() is None, "a process of another name was signalled"
    finally:
        for child in (stubborn, bystander):
            if child.poll() is None:
                child.kill()
            child.wait(10)
