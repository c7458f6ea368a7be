"""``<state_dir>/latch.json`` on disk, changed only under an exclusive lock.

Several processes use the latch (the watcher, ``stormwatch trip``,
``stormwatch rearm``), so every change is a read-modify-write under
``flock`` on ``<state_dir>/latch.lock``; nobody trusts an in-memory copy.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from watcher.core.latch import Latch, LatchFormatError
from watcher.state.files import StateError, atomic_write_json, ensure_state_dir, read_json

LATCH_FILE = "latch.json"
LOCK_FILE = "latch.lock"


class LatchStore:
    """The latch file of one state directory. No file means never tripped."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / LATCH_FILE

    @contextlib.contextmanager
    def locked(self) -> Iterator[Latch]:
        """Yield the latch for change; it is written back when the block ends."""
        ensure_state_dir(self.state_dir)
        fd = os.open(self.state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            latch = self.read()
            before = latch.to_json()
            yield latch
            after = latch.to_json()
            if after != before:
                atomic_write_json(self.path, after)
        finally:
            os.close(fd)  # releases the lock

    def read(self) -> Latch:
        """The latch (an armed one if there is no file). StateError if it is unreadable."""
        data = read_json(self.path)
        if data is None:
            return Latch()
        try:
            return Latch.from_json(data)
        except LatchFormatError as exc:
            raise StateError(f"{self.path}: not a stormwatch latch ({exc})") from exc
