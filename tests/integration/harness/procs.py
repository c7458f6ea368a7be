"""Small process and socket helpers shared by the harness parts."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import psutil

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on right now (for programs that bind it themselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def banner(port: int, host: str = LOOPBACK, timeout: float = 2.0) -> bytes:
    """The first bytes a server on ``host:port`` sends, or b"" if it cannot be reached."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            return sock.recv(512)
    except OSError:
        return b""


def alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie counts as gone (PID 1 here may reap late)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def still_running(procs: Sequence[psutil.Process]) -> list[psutil.Process]:
    """Those of ``procs`` that still run (PID reuse is told apart by start time)."""
    running = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                running.append(proc)
    return running


def describe(procs: Sequence[psutil.Process]) -> list[str]:
    """``name[pid]`` for each process, for failure messages."""
    names = []
    for proc in procs:
        try:
            names.append(f"{proc.name()}[{proc.pid}]")
        except psutil.Error:
            names.append(f"?[{proc.pid}]")
    return names


def processes_where(match: Callable[[psutil.Process], bool]) -> list[psutil.Process]:
    """Live processes for which ``match`` is true (errors reading one skip it)."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if proc.status() != psutil.STATUS_ZOMBIE and match(proc):
                found.append(proc)
    return found


def kill_all(procs: Sequence[psutil.Process], timeout: float = 5.0) -> list[int]:
    """SIGKILL each process and wait for it; returns the PIDs that were killed."""
    killed = []
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
            killed.append(proc.pid)
    psutil.wait_procs(list(procs), timeout=timeout)
    return killed


def run(
    argv: Sequence[str],
    *,
    stdin: str | None = None,
    timeout: float = 30.0,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, raising with its output when it fails or times out."""
    try:
        done = subprocess.run(
            list(argv),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=env,
        )
    except subprocess.TimeoutExpired as err:
        raise AssertionError(f"{argv!r} did not finish within {timeout:g}s") from err
    if done.returncode != 0:
        raise AssertionError(
            f"{argv!r} exited {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
        )
    return done


def stop_group(proc: subprocess.Popen[bytes], sig: int, timeout: float) -> int:
    """Send ``sig`` to a child started with ``start_new_session=True`` and wait for it.

    Escalates to SIGKILL on the whole process group when it does not exit in time, and
    always kills what is left of the group. Returns the child's exit status.
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    kill_all(processes_where(lambda p: _pgid(p.pid) == proc.pid))
    return proc.returncode


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a text file, for failure messages ("" if it does not exist)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Started:
    """``with X(...) as x:`` for harness parts that have ``start()`` and ``stop()``."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> object:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
