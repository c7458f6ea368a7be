"""Starting a private dovecot (``dovecot -F -c CONFIG``) for the harness's servers."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from .procs import stop_group, tail
from .requires import wait_for


def launch_dovecot(
    dovecot: str,
    config: Path,
    root: Path,
    log_path: Path,
    ready: Callable[[], bool],
    what: str,
    timeout: float,
) -> subprocess.Popen[bytes]:
    """Run dovecot in the foreground (its output in ``root/dovecot.stdout``) and wait
    until ``ready()``; if it exits or never gets ready, stop it and raise."""
    stdout = root / "dovecot.stdout"
    with stdout.open("wb") as out:
        proc = subprocess.Popen(
            [dovecot, "-F", "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: ready() or proc.poll() is not None,
            timeout,
            what,
            seen=lambda: tail(log_path, 10) + tail(stdout, 10),
        )
        if proc.poll() is not None:
            raise AssertionError(f"dovecot exited at start:\n{tail(stdout)}\n{tail(log_path)}")
    except BaseException:
        stop_group(proc, signal.SIGTERM, 10.0)
        raise
    return proc
