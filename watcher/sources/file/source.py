"""Follow a log file as it is written, through every kind of rotation, losing no line.

How it follows the file
-----------------------
The file is re-checked on every :meth:`FileSource.poll`: ``stat()`` of the path
(is it still the file we hold open?), ``fstat()`` of the open descriptor (did it
grow, did it shrink?), then one ``pread()`` per chunk of new bytes, split on
``b"\\n"``. Between polls the source sleeps on an inotify watch of the file's
directory (watchdog; also the directory of a symlink's target), waking only for
events about the file (or any event while a rotated file is still being
finished), or, in polling mode, wakes every ``poll_interval`` seconds. Every
call of ``poll`` looks at the file whatever inotify said, so the caller's poll
timeout bounds the delay should an event be missed (inotify queue overflow).
Polling is chosen automatically when the directory is on a network file system
(inotify does not see remote writes) or when inotify cannot be set up (watch or
instance limits, directory missing at start); ``use_inotify`` forces either
mode.

Rotation
--------
* **rename** (logrotate ``create``, ``postfix logrotate``) and **symlink swap**:
  the path now names another file. The old descriptor is kept open and read to
  its end *before* anything of the new file, and closed only once the new file
  has data (a writer that writes to the new file has stopped writing to the
  old one) or the old file has been idle for ``rotate_grace`` seconds.
* **delete and recreate**: same as rename; the deleted file stays readable
  through the open descriptor.
* **copytruncate**: the file shrank, or its first bytes changed. The source
  looks for the copy among the rotated siblings (``mail.log.1``) by content,
  reads the copy from where it was, then the truncated file from 0. If the
  file was empty at the last look, neither its size nor its first bytes can
  tell: a sibling that appeared since, is not a file the source follows or
  followed, and is not empty, is taken as the copy and read from 0. Lines the
  writer wrote *between* logrotate's copy and its truncate are in neither file
  and are lost unless the source had already read them: that window is
  inherent to copytruncate.
* **file absent**: the source waits for it (and says so once), then reads it
  from the start.

Checkpoint and restart
----------------------
A position is (device, inode, offset just after a newline, first bytes of the
file). :meth:`FileSource.commit` writes it atomically as (device, inode,
offset, length and SHA-256 of up to the first 4 KiB). The fingerprint covers
as many bytes as the file had when they were read (up to 4 KiB): a file
shorter than that at first keeps a shorter fingerprint in the positions made
while it was short, and a longer one afterwards; a candidate file matches when
its first ``fp_len`` bytes hash the same. On :meth:`FileSource.open`:

* no state file: start at the end of the file (after its last complete line),
  and write that position at once, so that "the first time" happens once;
* the path is still the checkpointed file (same inode and fingerprint, not
  shorter than the offset): resume at the offset;
* otherwise, the file was rotated or truncated while the watcher was down:
  look for it among the rotated siblings (``rotated_suffixes``: by default
  ``.1``; a glob suffix such as ``-[0-9]*`` covers logrotate's ``dateext``;
  compressed rotations such as ``.2.gz`` are not read),
  first by inode and fingerprint, then by fingerprint alone (the copy made by
  copytruncate), finish it from the offset, then read the current file from 0;
  if it is not found, say so (``checkpoints_lost``) and read the current file
  from 0.

Delivery is at-least-once: lines after the last committed position are read
again after a restart. A consumer that commits the last position of every
batch it handled gets each line exactly once.

Threads: ``open``, ``poll`` and ``close`` belong to one thread; ``commit`` and
``counters`` may be called from another.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import psutil
from watchdog.events import (
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from watcher.sources.base import Item, TextLine
from watcher.sources.checkpoint import CheckpointFile
from watcher.state.files import StateError

log = logging.getLogger(__name__)

FINGERPRINT_BYTES: Final = 4096
STATE_VERSION: Final = 1

COMPRESSED_SUFFIXES: Final = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".Z")

# File systems on which inotify does not see writes made by other hosts.
NETWORK_FS_TYPES: Final = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "glusterfs", "afs", "lustre", "gpfs"}
)

_WATCHED_EVENTS: Final[list[type[FileSystemEvent]]] = [
    FileModifiedEvent,
    FileCreatedEvent,
    FileMovedEvent,
    FileDeletedEvent,
]


@dataclass(frozen=True, slots=True)
class FileKey:
    """Which file a position is in: its device, inode and first bytes.

    ``head`` is the file's first ``min(FINGERPRINT_BYTES, size)`` bytes as
    they were when read. Positions share one ``FileKey`` per file and size
    class, so a position costs one small object.
    """

    dev: int
    ino: int
    head: bytes


@dataclass(frozen=True, slots=True)
class FilePosition:
    """Just after the newline of a line at ``offset`` in file ``file``."""

    file: FileKey
    offset: int


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A persisted position: the head is kept only as its length and hash."""

    dev: int
    ino: int
    offset: int
    fp_len: int
    fp: str

    @classmethod
    def of(cls, position: FilePosition) -> Checkpoint:
        head = position.file.head
        return cls(
            dev=position.file.dev,
            ino=position.file.ino,
            offset=position.offset,
            fp_len=len(head),
            fp=_digest(head),
        )

    def matches(self, head: bytes) -> bool:
        """True if a file whose first bytes are ``head`` has this fingerprint."""
        return len(head) >= self.fp_len and _digest(head[: self.fp_len]) == self.fp

    def to_json(self) -> dict[str, object]:
        return {
            "dev": self.dev,
            "ino": self.ino,
            "offset": self.offset,
            "fp_len": self.fp_len,
            "fp": self.fp,
        }


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _state_fields(path: str, checkpoint: Checkpoint | None) -> dict[str, object]:
    """The state file's fields (besides ``version``) for ``checkpoint`` in ``path``."""
    return {"path": path, "file": checkpoint.to_json() if checkpoint is not None else None}


def _parse_state(
    obj: dict[str, object], bad: Callable[[str], StateError]
) -> tuple[str, Checkpoint | None]:
    """Return (path, checkpoint) from a state file's JSON object, or raise ``bad(what)``."""
    path = obj.get("path")
    if not isinstance(path, str):
        raise bad("'path' is not a string")
    file = obj.get("file")
    if file is None:
        return path, None
    if not isinstance(file, dict):
        raise bad("'file' is neither null nor an object")
    ints: dict[str, int] = {}
    for field in ("dev", "ino", "offset", "fp_len"):
        value = file.get(field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise bad(f"'file.{field}' is not a non-negative integer")
        ints[field] = value
    fp = file.get("fp")
    if not isinstance(fp, str):
        raise bad("'file.fp' is not a string")
    return path, Checkpoint(
        dev=ints["dev"], ino=ints["ino"], offset=ints["offset"], fp_len=ints["fp_len"], fp=fp
    )


class _Tail:
    """One open file being read: where we are, and the incomplete line held back."""

    __slots__ = (
        "buf",
        "cut",
        "dev",
        "empty_siblings",
        "fd",
        "head",
        "ino",
        "key",
        "last_data",
        "path",
        "read_off",
    )

    def __init__(self, fd: int, path: str, st: os.stat_result, now: float) -> None:
        self.fd = fd
        self.path = path
        self.dev = st.st_dev
        self.ino = st.st_ino
        self.read_off = 0
        self.buf = b""  # bytes of the incomplete last line, ending at read_off
        self.cut: bytes | None = None  # kept start of an over-long line whose rest is skipped
        self.head = os.pread(fd, FINGERPRINT_BYTES, 0)
        self.key = FileKey(self.dev, self.ino, self.head)
        self.last_data = now
        # While nothing of the file has been read: its rotated siblings at the last look.
        self.empty_siblings: dict[str, tuple[int, int, int] | None] | None = None

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def set_head(self, head: bytes) -> None:
        self.head = head
        self.key = FileKey(self.dev, self.ino, head)

    def restart_at(self, offset: int) -> None:
        self.read_off = offset
        self.buf = b""
        self.cut = None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


class _WakeHandler(FileSystemEventHandler):
    """Runs on watchdog's thread: wakes the polling thread for events that matter."""

    def __init__(self, source: FileSource) -> None:
        self._source = source

    def on_any_event(self, event: FileSystemEvent) -> None:
        source = self._source
        if source._wake_on_any:  # draining a rotated file whose new name we do not track
            source._wake.set()
            return
        interest = source._interest
        if event.src_path in interest or (event.dest_path and event.dest_path in interest):
            source._wake.set()


ObserverFactory = Callable[[], BaseObserver]
MountLister = Callable[[], Sequence[tuple[str, str]]]


def _mounts() -> list[tuple[str, str]]:
    return [(p.mountpoint, p.fstype) for p in psutil.disk_partitions(all=True)]


class FileSource:
    """Follow one log file; see the module documentation for what it survives."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        state_path: str | os.PathLike[str],
        *,
        start_at_end_first_time: bool = True,
        use_inotify: bool | None = None,
        max_line: int = 65536,
        poll_interval: float = 1.0,
        rotated_suffixes: Sequence[str] = (".1",),  # e.g. (".1", "-[0-9]*") for dateext
        rotate_grace: float = 300.0,
        chunk_size: int = 256 * 1024,
        max_batch_bytes: int = 4 * 1024 * 1024,
        observer_factory: ObserverFactory = Observer,
        mounts: MountLister = _mounts,
        clock: Callable[[], float] = time.monotonic,  # for rotate_grace
    ) -> None:
        if max_line < 1 or chunk_size < 1 or max_batch_bytes < 1 or poll_interval <= 0:
            raise ValueError("max_line, chunk_size, max_batch_bytes and poll_interval must be > 0")
        self.path = os.path.abspath(os.fspath(path))
        self.name = f"file:{self.path}"
        self._checkpoint = CheckpointFile(
            state_path, kind="file-source checkpoint", version=STATE_VERSION
        )
        self.state_path = self._checkpoint.path
        self._start_at_end = start_at_end_first_time
        self._use_inotify = use_inotify
        self._max_line = max_line
        self._poll_interval = poll_interval
        self._suffixes = tuple(rotated_suffixes)
        self._rotate_grace = rotate_grace
        self._chunk = chunk_size
        self._max_batch = max_batch_bytes
        self._observer_factory = observer_factory
        self._mounts = mounts
        self._clock = clock

        self._current: _Tail | None = None
        self._old: list[_Tail] = []  # rotated away, read to their end before the current one
        self._absent_logged = False
        self._opened = False
        self._closed = False
        self._observer: BaseObserver | None = None
        self._watched_dirs: set[str] = set()
        # (dev, ino) -> first bytes of the files followed and closed since, oldest first
        self._closed_heads: dict[tuple[int, int], bytes] = {}
        self._wake = threading.Event()
        self._wake_on_any = False
        self._interest: frozenset[str] = frozenset({self.path})
        self._counts: dict[str, int] = dict.fromkeys(
            (
                "lines",
                "bytes",
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

    # ----------------------------------------------------------------- protocol

    @property
    def event_driven(self) -> bool:
        """True while inotify wakes the source; False in polling mode."""
        return self._observer is not None

    def open(self) -> None:
        if self._opened:
            raise RuntimeError(f"{self.name}: already opened")
        self._opened = True
        try:
            self._start()
            self._setup_wakeups()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        state = self._checkpoint.load()
        if state is None:
            self._first_start()
        else:
            saved_path, checkpoint = _parse_state(state, self._checkpoint.error)
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
                self._current = self._open_path(self.path)
                if self._current is None:
                    self._note_absent()
            else:
                self._resume(checkpoint)
        if self._current is not None and self._current.read_off == 0:
            self._check_copied_while_empty(self._current)  # the siblings as they are now

    def poll(self, timeout: float) -> list[Item]:
        if not self._opened or self._closed:
            raise RuntimeError(f"{self.name}: poll() needs an open source")
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            self._wake.clear()
            items = self._collect()
            if items or self._closed:
                return items
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return items
            if self._observer is None:
                remaining = min(remaining, self._poll_interval)
            self._wake.wait(remaining)

    def commit(self, position: object) -> None:
        if not isinstance(position, FilePosition):
            raise TypeError(f"{self.name}: not a file position: {position!r}")
        self._checkpoint.commit(position, lambda: self._state(Checkpoint.of(position)))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._stop_observer()
        for tail in [*self._old, *([self._current] if self._current else [])]:
            tail.close()
        self._old.clear()
        self._current = None

    def counters(self) -> dict[str, int]:
        counts = dict(self._counts)
        counts["commits"] = self._checkpoint.commits
        counts["waiting_for_file"] = int(self._opened and self._current is None)
        counts["inotify"] = int(self._observer is not None)
        return counts

    # ------------------------------------------------------------ start/resume

    def _first_start(self) -> None:
        tail = self._open_path(self.path)
        self._current = tail
        if tail is None:
            self._note_absent()
            self._checkpoint.save(self._state(None))
            return
        size = tail.size()
        offset = _last_line_end(tail.fd, size, self._max_line) if self._start_at_end else 0
        tail.restart_at(offset)
        log.info("%s: first start, reading from offset %d of %d", self.name, offset, size)
        self._checkpoint.save(self._state(Checkpoint.of(FilePosition(tail.key, offset))))

    def _resume(self, cp: Checkpoint) -> None:
        tail = self._open_path(self.path)
        if tail is not None and tail.ino == cp.ino and cp.matches(tail.head):
            size = tail.size()
            if size >= cp.offset:
                tail.restart_at(cp.offset)
                self._current = tail
                log.info("%s: resuming at offset %d of %d", self.name, cp.offset, size)
                return
        exclude = (tail.dev, tail.ino) if tail is not None else None
        rotated = self._find_rotated(cp, exclude)
        if rotated is not None:
            rotated.restart_at(cp.offset)
            self._retire(rotated)
            log.info(
                "%s: rotated while stopped: finishing %s from offset %d first",
                self.name,
                rotated.path,
                cp.offset,
            )
        else:
            self._counts["checkpoints_lost"] += 1
            log.warning(
                "%s: the checkpointed file (inode %d, offset %d) is neither %s nor a "
                "rotated sibling (%s): lines written to it after the checkpoint were missed",
                self.name,
                cp.ino,
                cp.offset,
                self.path,
                ", ".join(self.path + s for s in self._suffixes) or "none configured",
            )
        self._current = tail
        if tail is None:
            self._note_absent()

    def _find_rotated(self, cp: Checkpoint, exclude: tuple[int, int] | None) -> _Tail | None:
        """The rotated sibling holding the checkpointed file: by inode first, then by content."""
        by_content: _Tail | None = None
        for sibling in self._siblings():
            tail = self._open_path(sibling, quiet=True)
            if tail is None:
                continue
            usable = (
                (tail.dev, tail.ino) != exclude
                and cp.matches(tail.head)
                and tail.size() >= cp.offset
            )
            if usable and tail.ino == cp.ino:
                if by_content is not None:
                    by_content.close()
                return tail
            if usable and by_content is None and cp.fp_len > 0:
                by_content = tail
            else:
                tail.close()
        return by_content

    def _state(self, checkpoint: Checkpoint | None) -> dict[str, object]:
        return _state_fields(self.path, checkpoint)

    # ------------------------------------------------------------------ reading

    def _collect(self) -> list[Item]:
        items: list[Item] = []
        self._check_path()
        current = self._current
        if current is not None:
            self._check_truncation(current)
        budget = self._max_batch
        if self._old:
            # Decide before draining: once the new file has data, the writer has left the old one.
            current_has_data = current is not None and (current.read_off > 0 or current.size() > 0)
            now = self._clock()
            for old in list(self._old):
                budget -= self._read(old, items, budget)
                if budget <= 0:
                    return items
                if current_has_data or now - old.last_data > self._rotate_grace:
                    self._finish(old, items)
        if current is not None:
            self._read(current, items, budget)
        return items

    def _read(self, tail: _Tail, items: list[Item], budget: int) -> int:
        """Append the complete lines of ``tail``'s new bytes; return the bytes read."""
        available = tail.size() - tail.read_off
        if available <= 0:
            return 0
        todo = min(available, budget)
        done = 0
        while done < todo:
            data = os.pread(tail.fd, min(self._chunk, todo - done), tail.read_off)
            if not data:
                break
            done += len(data)
            tail.read_off += len(data)
            if len(tail.head) < FINGERPRINT_BYTES and tail.read_off > len(tail.head):
                head = os.pread(tail.fd, FINGERPRINT_BYTES, 0)
                if head.startswith(tail.head):
                    tail.set_head(head)
            self._split(tail, data, items)
        if done:
            tail.last_data = self._clock()
            self._counts["bytes"] += done
        return done

    def _split(self, tail: _Tail, data: bytes, items: list[Item]) -> None:
        if tail.buf:
            data = tail.buf + data
        offset = tail.read_off - len(data)  # file offset of data[0]
        parts = data.split(b"\n")
        rest = parts.pop()
        key = tail.key
        max_line = self._max_line
        for raw in parts:
            offset += len(raw) + 1
            if tail.cut is not None:
                raw, tail.cut = tail.cut, None
            elif len(raw) > max_line:
                raw = raw[:max_line]
                self._counts["long_lines_cut"] += 1
            items.append(TextLine(self._decode(raw), FilePosition(key, offset)))
        self._counts["lines"] += len(parts)
        if tail.cut is not None:
            tail.buf = b""
        elif len(rest) > max_line:
            tail.cut = rest[:max_line]
            tail.buf = b""
            self._counts["long_lines_cut"] += 1
        else:
            tail.buf = rest

    def _decode(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self._counts["invalid_utf8_lines"] += 1
            return raw.decode("utf-8", errors="replace")

    def _finish(self, tail: _Tail, items: list[Item]) -> None:
        """Close a rotated-away file for good, delivering a last line that never got its newline."""
        partial = tail.cut if tail.cut is not None else tail.buf
        if partial:
            self._counts["partial_lines_flushed"] += 1
            self._counts["lines"] += 1
            items.append(TextLine(self._decode(partial), FilePosition(tail.key, tail.read_off)))
        log.debug("%s: done with rotated file %s (inode %d)", self.name, tail.path, tail.ino)
        tail.close()
        self._closed_heads[(tail.dev, tail.ino)] = tail.head
        while len(self._closed_heads) > 64:
            del self._closed_heads[next(iter(self._closed_heads))]
        self._old.remove(tail)
        self._update_interest()

    # ------------------------------------------------- rotation and truncation

    def _check_path(self) -> None:
        """Notice that the path names another file now (rename, delete, symlink swap)."""
        try:
            st = os.stat(self.path)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                log.warning("%s: cannot stat: %s", self.name, exc)
            st = None
        current = self._current
        if st is None:
            if current is not None:
                log.info("%s: file gone (renamed or deleted): finishing it", self.name)
                self._counts["rotations"] += 1
                self._retire(current)
                self._current = None
            self._note_absent()
            return
        if current is not None and (st.st_dev, st.st_ino) == (current.dev, current.ino):
            return
        tail = self._open_path(self.path)
        if tail is None:
            return
        if current is not None:
            if (tail.dev, tail.ino) == (current.dev, current.ino):
                tail.close()
                return
            log.info(
                "%s: rotated (inode %d -> %d): finishing the old file first",
                self.name,
                current.ino,
                tail.ino,
            )
            self._counts["rotations"] += 1
            self._retire(current)
        elif self._absent_logged:
            log.info("%s: file appeared, reading it from the start", self.name)
        self._absent_logged = False
        self._current = tail
        try:
            self._refresh_watches()
        except OSError as exc:
            self._counts["inotify_failures"] += 1
            self._stop_observer()
            log.warning(
                "%s: cannot watch the file's directory any more (%s): polling every %gs",
                self.name,
                exc,
                self._poll_interval,
            )

    def _check_truncation(self, tail: _Tail) -> None:
        """copytruncate: the file shrank below our offset, or its first bytes changed."""
        if tail.read_off == 0:
            self._check_copied_while_empty(tail)
            head = os.pread(tail.fd, FINGERPRINT_BYTES, 0)  # nothing read yet: as it is now
            if head != tail.head:
                tail.set_head(head)
            return
        tail.empty_siblings = None
        size = tail.size()
        if size > tail.read_off:
            if not tail.head or os.pread(tail.fd, len(tail.head), 0) == tail.head:
                return
        elif size == tail.read_off:
            return
        self._counts["truncations"] += 1
        copy = self._find_copy(tail)
        if copy is not None:
            copy.read_off, copy.buf, copy.cut = tail.read_off, tail.buf, tail.cut
            self._retire(copy)
            log.warning(
                "%s: truncated (copytruncate); finishing the copy %s from offset %d first",
                self.name,
                copy.path,
                tail.read_off,
            )
        else:
            if tail.buf or tail.cut is not None:
                self._counts["partial_lines_dropped"] += 1
            log.warning(
                "%s: truncated at offset %d (copytruncate?) and no copy found among %s: "
                "reading it again from the start",
                self.name,
                tail.read_off,
                ", ".join(self.path + s for s in self._suffixes) or "none configured",
            )
        tail.restart_at(0)
        tail.set_head(os.pread(tail.fd, FINGERPRINT_BYTES, 0))
        self._check_copied_while_empty(tail)  # the siblings now, should it be copied again

    def _check_copied_while_empty(self, tail: _Tail) -> None:
        """copytruncate of a file that was empty at our last look.

        Neither its size nor its first bytes can tell: what was written before
        the copy is only in the copy. A sibling that was not there at the last
        look (another inode, or the same inode number created anew: another
        ctime), that is not a file we hold open, and that does not start like a
        file we followed, can only be that copy: a rename rotation would have
        changed the file at our path.
        """
        siblings: dict[str, tuple[int, int, int] | None] = {}
        for sibling in self._siblings():
            try:
                st = os.stat(sibling)
            except OSError:
                siblings[sibling] = None
                continue
            siblings[sibling] = (st.st_dev, st.st_ino, st.st_ctime_ns)
        before, tail.empty_siblings = tail.empty_siblings, siblings
        if before is None:
            return
        for sibling, ident in siblings.items():
            if ident is None or ident == before.get(sibling):
                continue
            copy = self._open_path(sibling, quiet=True)
            if copy is None:
                continue
            if copy.size() == 0 or self._followed(copy):
                copy.close()
                continue
            self._counts["truncations"] += 1
            self._retire(copy)
            log.warning(
                "%s: copied to %s and truncated since the last look: reading the copy first",
                self.name,
                copy.path,
            )
            return

    def _followed(self, other: _Tail) -> bool:
        """True if ``other`` is a file we hold open, or one we followed (same inode and start)."""
        ident = (other.dev, other.ino)
        for tail in (self._current, *self._old):
            if tail is not None and (tail.dev, tail.ino) == ident:
                return True
        head = self._closed_heads.get(ident)
        return bool(head) and other.head.startswith(head or b"")

    def _find_copy(self, tail: _Tail) -> _Tail | None:
        """The sibling that starts with the bytes the truncated file started with."""
        if not tail.head:
            return None
        for sibling in self._siblings():
            copy = self._open_path(sibling, quiet=True)
            if copy is None:
                continue
            if (
                copy.ino != tail.ino
                and copy.head.startswith(tail.head)
                and copy.size() >= tail.read_off
            ):
                return copy
            copy.close()
        return None

    def _siblings(self) -> list[str]:
        """Where a rotated copy of the file may be: ``path + suffix`` for each suffix.

        A suffix with glob characters (``-[0-9]*`` for logrotate's ``dateext``)
        names every match, newest first; compressed files are left out.
        """
        found: list[str] = []
        for suffix in self._suffixes:
            if not any(c in suffix for c in "*?["):
                found.append(self.path + suffix)
                continue
            matches = [
                m
                for m in glob.glob(glob.escape(self.path) + suffix)
                if not m.endswith(COMPRESSED_SUFFIXES)
            ]
            found.extend(sorted(matches, key=_mtime, reverse=True))
        return found

    def _retire(self, tail: _Tail) -> None:
        tail.last_data = self._clock()
        self._old.append(tail)
        self._update_interest()

    def _note_absent(self) -> None:
        if not self._absent_logged:
            self._absent_logged = True
            log.warning("%s: file does not exist (yet): waiting for it", self.name)

    def _open_path(self, path: str, *, quiet: bool = False) -> _Tail | None:
        """Open ``path`` for reading at offset 0, or return None if it is not there."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENOENT and not quiet:
                log.warning("%s: cannot open %s: %s", self.name, path, exc)
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                if not quiet:
                    log.error("%s: %s is not a regular file", self.name, path)
                os.close(fd)
                return None
            return _Tail(fd, path, st, self._clock())
        except BaseException:
            os.close(fd)
            raise

    # ----------------------------------------------------------------- wakeups

    def _setup_wakeups(self) -> None:
        want = self._use_inotify
        directory = os.path.dirname(self.path)
        if want is None:
            fstype = _fs_type(directory, self._mounts)
            if fstype in NETWORK_FS_TYPES or fstype.startswith("fuse.sshfs"):
                log.info(
                    "%s: %s is on %s: polling every %gs",
                    self.name,
                    directory,
                    fstype,
                    self._poll_interval,
                )
                return
            want = True
        if not want:
            log.info("%s: polling every %gs", self.name, self._poll_interval)
            return
        try:
            observer = self._observer_factory()
            self._observer = observer
            self._refresh_watches()
            observer.start()
        except OSError as exc:
            self._counts["inotify_failures"] += 1
            self._stop_observer()
            if self._use_inotify:
                raise
            log.warning(
                "%s: inotify unavailable (%s): polling every %gs instead",
                self.name,
                exc,
                self._poll_interval,
            )
            return
        log.info(
            "%s: following with inotify on %s", self.name, ", ".join(sorted(self._watched_dirs))
        )

    def _refresh_watches(self) -> None:
        """Watch the file's directory, and its symlink target's directory if elsewhere."""
        self._update_interest()
        observer = self._observer
        if observer is None:
            return
        real = os.path.realpath(self.path)
        for directory in (os.path.dirname(self.path), os.path.dirname(real)):
            if directory in self._watched_dirs:
                continue
            try:
                observer.schedule(
                    _WakeHandler(self), directory, recursive=False, event_filter=_WATCHED_EVENTS
                )
            except OSError as exc:
                if directory == os.path.dirname(self.path) or not os.path.isdir(directory):
                    raise
                log.warning("%s: cannot watch %s: %s", self.name, directory, exc)
                continue
            self._watched_dirs.add(directory)

    def _update_interest(self) -> None:
        self._interest = frozenset({self.path, os.path.realpath(self.path)})
        self._wake_on_any = bool(self._old)

    def _stop_observer(self) -> None:
        observer, self._observer = self._observer, None
        self._watched_dirs.clear()
        if observer is None:
            return
        with contextlib.suppress(RuntimeError):
            observer.stop()
            observer.join(timeout=5)


def _fs_type(directory: str, mounts: MountLister) -> str:
    """The type of the file system holding ``directory`` ("" if unknown)."""
    try:
        real = os.path.realpath(directory)
        best, fstype = "", ""
        for mountpoint, kind in mounts():
            inside = real == mountpoint or real.startswith(mountpoint.rstrip("/") + "/")
            if inside and len(mountpoint) >= len(best):
                best, fstype = mountpoint, kind
        return fstype
    except (OSError, RuntimeError) as exc:
        log.debug("cannot list mounts: %s", exc)
        return ""


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def _last_line_end(fd: int, size: int, window: int) -> int:
    """Offset just after the file's last newline (0 if it has none in reach)."""
    if size == 0:
        return 0
    start = max(0, size - window - 1)
    data = os.pread(fd, size - start, start)
    index = data.rfind(b"\n")
    if index >= 0:
        return start + index + 1
    return 0 if start == 0 else size
