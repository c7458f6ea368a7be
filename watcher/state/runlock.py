"""One watcher per state directory: ``<state_dir>/run.lock``, held for the life of ``run``.

Two watchers on one state directory would both freeze, page and run the
command for the same storm. The lock is an ``flock`` (the kernel drops it when
the process dies, even by kill -9, so a stale file never blocks a restart) on
a file that holds the holder's PID, so the second watcher can say who has it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from watcher.core.errors import StormwatchError
from watcher.state.files import ensure_state_dir

RUN_LOCK = "run.lock"


class AlreadyRunning(StormwatchError):
    """Another watcher holds the state directory."""


class RunLock:
    """``acquire()`` it once; it is released by ``release()`` or when the process ends."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.path = Path(state_dir) / RUN_LOCK
        self._fd: int | None = None

    def acquire(self) -> None:
        """Hold the lock, or AlreadyRunning naming the PID that holds it."""
        ensure_state_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise AlreadyRunning(
                f"another stormwatch watcher (PID {holder}) is running with the state "
                f"directory {self.path.parent} (it holds {self.path}): one watcher per state "
                "directory; stop it first, or give this one another --state-dir"
            ) from None
        self._fd = fd
        with contextlib.suppress(OSError):  # a full disk: held all the same, PID unsaid
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)


def holder(state_dir: str | os.PathLike[str]) -> int | None:
    """The PID of the watcher holding ``state_dir``, or None if none does."""
    path = Path(state_dir) / RUN_LOCK
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else -1
        return None
    finally:
        os.close(fd)
