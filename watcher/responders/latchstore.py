"""``<state_dir>/latch.json`` on disk, changed only under an exclusive lock.

Several processes use the latch (the watcher, ``stormwatch trip``,
``stormwatch rearm``), so every change is a read-modify-write under
``flock`` on ``<state_dir>/latch.lock``.

When it matters, it acts: a latch that cannot be written (a full disk, a
read-only file system) does not stop a trip. The change is kept in memory,
:attr:`LatchStore.save_error` says why, every later change and
:meth:`LatchStore.flush` try again, and the page says it could not be saved.

A latch file that cannot be read (corrupt, truncated, a shape that is not a
latch, or a file someone other than the running user could have written) is
"tripped, state unknown" (:attr:`~watcher.core.latch.Latch.unknown`): the
switch still acts on new trips, and ``rearm`` refuses it until told ``--force``.
Nothing read from such a file is ever acted on.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from watcher.core.latch import Latch, LatchFormatError
from watcher.state.files import StateError, atomic_write_json, ensure_state_dir, move_aside
from watcher.state.files import read_json as _read_json
from watcher.state.trust import untrusted_state_file

log = logging.getLogger(__name__)

LATCH_FILE = "latch.json"
LOCK_FILE = "latch.lock"
ACTING_FILE = "actions.lock"  # held by whoever is carrying out the trip's actions


class LatchStore:
    """The latch file of one state directory. No file means never tripped."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / LATCH_FILE
        self.save_error = ""  # why the last write failed ("" once it is saved)
        self._memory: Latch | None = None  # newer than the file while it cannot be written
        self._mutex = threading.RLock()

    @contextlib.contextmanager
    def locked(self) -> Iterator[Latch]:
        """Yield the latch for change; it is written back when the block ends (or kept
        in memory, and retried, if it cannot be)."""
        with self._mutex:
            fd = self._lock_file()
            try:
                latch = self._current()
                before = latch.to_json()
                yield latch
                if latch.to_json() != before or self._memory is not None:
                    self._save(latch)
            finally:
                if fd is not None:
                    os.close(fd)  # releases the lock

    def read(self) -> Latch:
        """The latch: the unsaved one in memory if there is one, else the file's
        (an armed one if there is no file; ``unknown`` set if it is unreadable)."""
        with self._mutex:
            return self._current()

    def flush(self) -> bool:
        """Try again to write a latch kept in memory; True when nothing is left unsaved."""
        with self._mutex:
            if self._memory is None:
                return True
            with self.locked():
                pass
            return self._memory is None

    def set_aside(self, now: float | None = None) -> Path | None:
        """Move an unreadable latch file aside (kept for a human); its new path."""
        with self._mutex:
            if not self.path.exists():
                return None
            try:
                aside = move_aside(self.path, time.time() if now is None else now)
            except OSError as exc:
                log.error("cannot move the unreadable %s aside: %s", self.path, exc)
                return None
            log.error("moved the unreadable latch %s to %s", self.path, aside)
            return aside

    @contextlib.contextmanager
    def acting(self, wait: float | None = 0.0) -> Iterator[bool]:
        """Hold the right to carry out the trip's actions (the watcher's, ``trip``'s and
        ``rearm``'s never overlap). Yields False if another process holds it after
        ``wait`` seconds (0: do not wait; None: wait as long as it takes)."""
        try:
            ensure_state_dir(self.state_dir)
            fd = os.open(self.state_dir / ACTING_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            log.error("cannot open %s (%s): going on without it", ACTING_FILE, exc)
            yield True
            return
        try:
            yield _flock(fd, wait)
        finally:
            os.close(fd)

    def raw(self, limit: int = 2000) -> str:
        """The file's first bytes as text, for a human deciding on ``rearm --force``."""
        try:
            with open(self.path, "rb") as f:
                return f.read(limit).decode("utf-8", "replace")
        except OSError as exc:
            return f"(cannot read: {exc})"

    # ------------------------------------------------------------------ inside

    def _current(self) -> Latch:
        if self._memory is not None:
            return Latch.from_json(self._memory.to_json())  # a copy
        return self._load()

    def _load(self) -> Latch:
        why = untrusted_state_file(self.path)
        if why:
            return Latch(tripped=True, unknown=f"{self.path}: {why}")
        try:
            data = _read_json(self.path)
        except (StateError, OSError) as exc:
            return Latch(tripped=True, unknown=str(exc))
        if data is None:
            return Latch()
        try:
            return Latch.from_json(data)
        except LatchFormatError as exc:
            return Latch(tripped=True, unknown=f"{self.path}: not a stormwatch latch ({exc})")

    def _save(self, latch: Latch) -> None:
        if latch.unknown:
            return  # never write "state unknown" over the file that holds the evidence
        try:
            atomic_write_json(self.path, latch.to_json())
        except OSError as exc:
            first = not self.save_error
            self.save_error = f"{exc.strerror or exc}"
            self._memory = latch
            (log.error if first else log.debug)(
                "cannot save %s (%s): the latch is held in memory and saved as soon as it can be",
                self.path,
                self.save_error,
            )
            return
        if self._memory is not None:
            log.warning("saved %s (it could not be written before)", self.path)
        self._memory = None
        self.save_error = ""

    def _lock_file(self) -> int | None:
        try:
            ensure_state_dir(self.state_dir)
            fd = os.open(self.state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            log.error("cannot open %s (%s): going on without it", LOCK_FILE, exc)
            return None
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd


def _flock(fd: int, wait: float | None) -> bool:
    if wait is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
