"""A real fetchmail daemon pulling from a POP3 server into a private Postfix's smtpd.

``fetchmail --daemon N --nodetach`` runs as a direct child (its PID is the fetchmail
process the kill switch finds by name and SIGINTs), with its own rcfile, HOME and
FETCHMAILHOME under ``root``; ``-v`` output goes to ``root/fetchmail.out``.
Each message is forwarded by SMTP with the POP3 message's Return-Path as envelope
sender (a list's bounce address) to ``deliver_to``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from pathlib import Path

from .procs import LOOPBACK, Started, stop_group, tail
from .requires import require_programs, wait_for

POLL_DONE = re.compile(r"poll completed")
SIGNALLED = re.compile(r"terminated with signal (\d+)")


class FetchmailDaemon(Started):
    """``start()``, ``pid``, ``interrupt()`` (SIGINT), ``wait()``, ``stop()``."""

    def __init__(
        self,
        root: Path,
        *,
        pop3_port: int,
        pop3_user: str,
        pop3_password: str,
        smtp_port: int,
        deliver_to: str,
        interval: int = 1,
        fetchlimit: int = 0,
        verbose: bool = True,
    ) -> None:
        self.root = root
        self.pop3_port = pop3_port
        self.pop3_user = pop3_user
        self.pop3_password = pop3_password
        self.smtp_port = smtp_port
        self.deliver_to = deliver_to
        self.interval = interval
        self.fetchlimit = fetchlimit  # messages per poll; 0: all of them
        self.verbose = verbose
        self.rcfile = root / "fetchmailrc"
        self.output_path = root / "fetchmail.out"
        self.pidfile = root / "fetchmail.pid"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("fetchmail is not started")
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        """None while it runs; else its exit status (negative: killed by that signal)."""
        return None if self._proc is None else self._proc.poll()

    def rc(self) -> str:
        # sslproto '': no TLS at all (6.4 would otherwise try STLS when offered).
        return (
            "# fetchmailrc of a stormwatch test instance\n"
            "set no bouncemail\n"
            "set no syslog\n"
            f"poll {LOOPBACK} service {self.pop3_port} protocol pop3 auth password timeout 10:\n"
            f'  user "{self.pop3_user}" there with password "{self.pop3_password}"'
            f' is "{self.deliver_to}" here\n'
            "  sslproto ''\n"
            f"  smtphost {LOOPBACK}/{self.smtp_port}\n"
            "  fetchall\n" + (f"  fetchlimit {self.fetchlimit}\n" if self.fetchlimit else "")
        )

    def start(self, timeout: float = 15.0) -> FetchmailDaemon:
        """Start the daemon and wait for its first poll to have begun."""
        fetchmail = require_programs("fetchmail")["fetchmail"]
        self.root.mkdir(parents=True, exist_ok=True)
        self.rcfile.write_text(self.rc(), encoding="utf-8")
        self.rcfile.chmod(0o600)  # fetchmail refuses an rcfile others can read
        argv = [
            fetchmail,
            "--daemon",
            str(self.interval),
            "--nodetach",
            "--fetchmailrc",
            str(self.rcfile),
            "--pidfile",
            str(self.pidfile),
            "--idfile",
            str(self.root / "fetchids"),
            "--nosyslog",
        ]
        if self.verbose:
            argv.append("-v")
        env = {
            "HOME": str(self.root),
            "FETCHMAILHOME": str(self.root),
            "PATH": os.environ.get("PATH", os.defpath),
            "LANG": "C",
            "LC_ALL": "C",
        }
        with self.output_path.open("wb") as out:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                env=env,
                start_new_session=True,
            )
        try:
            wait_for(
                lambda: "poll started" in self.output() or self.returncode is not None,
                timeout,
                "fetchmail's first poll to start",
                seen=lambda: tail(self.output_path, 10),
            )
            if self.returncode is not None:
                raise AssertionError(
                    f"fetchmail exited {self.returncode} at start:\n{tail(self.output_path)}"
                )
        except BaseException:
            self.stop()
            raise
        return self

    def output(self) -> str:
        """Everything fetchmail wrote so far (with -v: the POP3 and SMTP dialogue)."""
        try:
            return self.output_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def polls_completed(self) -> int:
        return len(POLL_DONE.findall(self.output()))

    def interrupt(self) -> None:
        """SIGINT, what the incident's admin sent by hand."""
        os.kill(self.pid, signal.SIGINT)

    def wait(self, timeout: float) -> int:
        """Wait for fetchmail to exit; returns its exit status."""
        if self._proc is None:
            raise RuntimeError("fetchmail is not started")
        try:
            return self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as err:
            raise AssertionError(
                f"fetchmail (pid {self.pid}) still running after {timeout:g}s:\n"
                f"{tail(self.output_path, 10)}"
            ) from err

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (SIGKILL after ``timeout``); returns the exit status, None if never run."""
        if self._proc is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            return stop_group(self._proc, signal.SIGTERM, timeout)
        return self._proc.returncode
