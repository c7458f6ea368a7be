"""The file source: where to start, and one poll's worth of lines.

Each :meth:`FileSource.poll` looks at the file whatever woke it
(:mod:`~watcher.sources.file.wake`): is the path still the file held open, did
it shrink or change (:mod:`~watcher.sources.file.rotation`), then it reads the
rotated files to their end and the current file's new bytes
(:mod:`~watcher.sources.file.tail`), at most ``max_batch_bytes`` a poll.

Checkpoint and restart
----------------------
:meth:`FileSource.commit` writes a position atomically as a
:class:`~watcher.sources.file.position.Checkpoint`. On :meth:`FileSource.open`:

* no state file: start at the end of the file (after its last complete line),
  and write that position at once, so that "the first time" happens once;
* the path is still the checkpointed file (same inode and fingerprint, not
  shorter than the offset): resume at the offset;
* otherwise, the file was rotated or truncated while the watcher was down:
  look for it among the rotated siblings, first by inode and fingerprint, then
  by fingerprint alone (the copy made by copytruncate), finish it from the
  offset, then read the current file from 0; if it is not found, say so
  (``checkpoints_lost``) and read the current file from 0;
* stopped during a rotation (a rotated file was still being drained): the
  checkpoint names every open file with its own offset (``also``, see
  :mod:`~watcher.sources.file.position`); each is resumed where its lines
  stopped, the rotated ones first, so a restart in the grace period neither
  loses nor repeats a line of either file.

Delivery is at-least-once: lines after the last committed position are read
again after a restart. A consumer that commits the last position of every
batch it handled gets each line exactly once.

Threads: ``open``, ``poll`` and ``close`` belong to one thread; ``commit`` and
``counters`` may be called from another.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Final

from watchdog.observers import Observer

from watcher.sources.base import Item
from watcher.sources.checkpoint import CheckpointFile
from watcher.sources.file.position import (
    Checkpoint,
    FilePosition,
    Others,
    parse_state,
    state_fields,
)
from watcher.sources.file.rotation import RotationTracker
from watcher.sources.file.tail import LineReader, Tail, last_line_end
from watcher.sources.file.wake import (
    DirectoryWatch,
    MountLister,
    ObserverFactory,
    Wakeup,
    list_mounts,
)
from watcher.sources.lines import MAX_LINE
from watcher.state.files import StateError

log = logging.getLogger(__name__)

STATE_VERSION: Final = 1
ROTATED_QUIET: Final = 5.0  # seconds without new data before a rotated file is closed


class FileSource:
    """Follow one log file; see the package documentation for what it survives."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        state_path: str | os.PathLike[str],
        *,
        start_at_end_first_time: bool = True,
        use_inotify: bool | None = None,
        max_line: int = MAX_LINE,
        poll_interval: float = 1.0,
        rotated_suffixes: Sequence[str] = (".1",),  # e.g. (".1", "-[0-9]*") for dateext
        rotate_grace: float = 300.0,
        rotated_quiet: float = ROTATED_QUIET,
        chunk_size: int = 256 * 1024,
        max_batch_bytes: int = 4 * 1024 * 1024,
        observer_factory: ObserverFactory = Observer,
        mounts: MountLister = list_mounts,
        clock: Callable[[], float] = time.monotonic,  # for rotate_grace and rotated_quiet
    ) -> None:
        if max_line < 1 or chunk_size < 1 or max_batch_bytes < 1 or poll_interval <= 0:
            raise ValueError("max_line, chunk_size, max_batch_bytes and poll_interval must be > 0")
        if rotated_quiet < 0 or rotate_grace < rotated_quiet:
            raise ValueError("need 0 <= rotated_quiet <= rotate_grace")
        self.path = os.path.abspath(os.fspath(path))
        self.name = f"file:{self.path}"
        self._checkpoint = CheckpointFile(
            state_path, kind="file-source checkpoint", version=STATE_VERSION
        )
        self.state_path = self._checkpoint.path
        self._start_at_end = start_at_end_first_time
        self._max_line = max_line
        self._rotate_grace = rotate_grace
        self._rotated_quiet = rotated_quiet
        self._max_batch = max_batch_bytes
        self._clock = clock
        self._opened = False
        self._closed = False
        self._counts: dict[str, int] = dict.fromkeys(
            (
                "lines",
                "bytes",
                "rotated_lines",
                "rotations",
                "truncations",
                "long_lines_cut",
                "invalid_utf8_lines",
                "partial_lines_flushed",
                "partial_lines_dropped",
                "checkpoints_lost",
                "inotify_failures",
            ),
            0,
        )
        self._wakeup = Wakeup(self.path)
        self._watch = DirectoryWatch(
            self.path,
            self._wakeup,
            name=self.name,
            counts=self._counts,
            use_inotify=use_inotify,
            poll_interval=poll_interval,
            observer_factory=observer_factory,
            mounts=mounts,
        )
        self._files = RotationTracker(
            self.path,
            name=self.name,
            suffixes=rotated_suffixes,
            counts=self._counts,
            wakeup=self._wakeup,
            on_new_file=self._watch.follow_new_file,
            clock=clock,
        )
        self._reader = LineReader(
            max_line=max_line, chunk_size=chunk_size, counts=self._counts, clock=clock
        )

    # ----------------------------------------------------------------- protocol

    @property
    def event_driven(self) -> bool:
        """True while inotify wakes the source; False in polling mode."""
        return self._watch.event_driven

    def open(self) -> None:
        if self._opened:
            raise RuntimeError(f"{self.name}: already opened")
        self._opened = True
        try:
            self._start()
            self._watch.start()
        except BaseException:
            self.close()
            raise

    def poll(self, timeout: float) -> list[Item]:
        if not self._opened or self._closed:
            raise RuntimeError(f"{self.name}: poll() needs an open source")
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            self._wakeup.event.clear()
            items = self._collect()
            if items or self._closed:
                return items
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return items
            self._watch.sleep(remaining)

    def commit(self, position: object) -> None:
        if not isinstance(position, FilePosition):
            raise TypeError(f"{self.name}: not a file position: {position!r}")
        self._checkpoint.commit(position, lambda: self._state(Checkpoint.of(position)))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wakeup.event.set()
        self._watch.stop()
        self._files.close()

    def counters(self) -> dict[str, int]:
        counts = dict(self._counts)
        counts["commits"] = self._checkpoint.commits
        counts["checkpoints_corrupt"] = self._checkpoint.corrupt
        following = self._opened and not self._closed  # not after a clean stop
        counts["waiting_for_file"] = int(following and self._files.current is None)
        counts["inotify"] = int(self._watch.event_driven)
        return counts

    # ------------------------------------------------------------ start/resume

    def _start(self) -> None:
        files = self._files
        try:
            state = self._checkpoint.load()
            saved = parse_state(state, self._checkpoint.error) if state is not None else None
        except StateError as exc:
            self._checkpoint.set_aside(exc)
            saved = None
        if saved is None:
            self._first_start()
        else:
            saved_path, checkpoint = saved
            if saved_path != self.path:
                log.warning(
                    "%s: checkpoint %s is for %s, not this file: starting afresh",
                    self.name,
                    self.state_path,
                    saved_path,
                )
                self._first_start()
            elif checkpoint is None:
                # Started before while the file was absent: whatever it holds now is new.
                files.current = files.open(self.path)
                if files.current is None:
                    files.note_absent()
            else:
                self._resume(checkpoint)
        if files.current is not None and files.current.read_off == 0:
            files.check_copied_while_empty(files.current)  # the siblings as they are now

    def _first_start(self) -> None:
        files = self._files
        tail = files.open(self.path)
        files.current = tail
        if tail is None:
            files.note_absent()
            self._checkpoint.save_first(self._state(None))
            return
        size = tail.size()
        offset = last_line_end(tail.fd, size, self._max_line) if self._start_at_end else 0
        tail.restart_at(offset)
        log.info("%s: first start, reading from offset %d of %d", self.name, offset, size)
        self._checkpoint.save_first(self._state(Checkpoint.of(FilePosition(tail.key, offset))))

    def _resume(self, saved: Checkpoint) -> None:
        files = self._files
        tail = files.open(self.path)
        checkpoints = saved.all()  # more than one if stopped during a rotation
        at_path: Checkpoint | None = None
        if tail is not None:
            size = tail.size()
            at_path = next(
                (
                    cp
                    for cp in checkpoints
                    if tail.ino == cp.ino and cp.matches(tail.head) and size >= cp.offset
                ),
                None,
            )
        claimed = {(tail.dev, tail.ino)} if tail is not None else set()
        for cp in checkpoints:
            if cp is not at_path:
                self._resume_rotated(cp, claimed)
        if tail is not None and at_path is not None:
            tail.restart_at(at_path.offset)
            log.info("%s: resuming at offset %d of %d", self.name, at_path.offset, tail.size())
        files.current = tail
        if tail is None:
            files.note_absent()

    def _resume_rotated(self, cp: Checkpoint, claimed: set[tuple[int, int]]) -> None:
        """Finish, before the file at the path, a checkpointed file that is no longer there."""
        files = self._files
        rotated = files.find_rotated(cp, claimed)
        if rotated is not None:
            claimed.add((rotated.dev, rotated.ino))
            rotated.restart_at(cp.offset)
            files.retire(rotated)
            log.info(
                "%s: rotated while stopped: finishing %s from offset %d first",
                self.name,
                rotated.path,
                cp.offset,
            )
            return
        self._counts["checkpoints_lost"] += 1
        log.warning(
            "%s: the checkpointed file (inode %d, offset %d) is neither %s nor a "
            "rotated sibling (%s): lines written to it after the checkpoint were missed",
            self.name,
            cp.ino,
            cp.offset,
            self.path,
            files.describe_siblings(),
        )

    def _state(self, checkpoint: Checkpoint | None) -> dict[str, object]:
        return state_fields(self.path, checkpoint)

    # ------------------------------------------------------------------ reading

    def _collect(self) -> list[Item]:
        items: list[Item] = []
        files = self._files
        files.check_path()
        current = files.current
        if current is not None:
            files.check_truncation(current)
        budget = self._max_batch
        if files.old:
            # Decided before draining. Once the new file has data the daemon has moved
            # to it, but another writer may still hold the old one open (a second
            # process, rsyslog before its HUP): a rotated file is closed only after
            # rotated_quiet seconds without new data, or rotate_grace while the new
            # file is still empty.
            current_has_data = current is not None and (current.read_off > 0 or current.size() > 0)
            quiet = self._rotated_quiet if current_has_data else self._rotate_grace
            now = self._clock()
            for old in list(files.old):
                budget -= self._reader.read(old, items, budget, self._others(old))
                if budget <= 0:
                    break
                if now - old.last_data > quiet:
                    self._reader.flush(old, items, self._others(old))
                    files.done(old)
            self._counts["rotated_lines"] += len(items)
            if budget <= 0:
                return items
        if current is not None:
            self._reader.read(current, items, budget, self._others(current))
        return items

    def _others(self, tail: Tail) -> Others:
        """The other open files and how far their lines went: for ``tail``'s positions."""
        files = self._files
        if not files.old:
            return ()
        return tuple(
            (other.key, other.line_end)
            for other in (*files.old, files.current)
            if other is not None and other is not tail
        )
