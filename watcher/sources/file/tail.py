"""The open file being read, and its new bytes cut into lines.

A :class:`Tail` is one open descriptor: where reading is, the incomplete last
line held back until its newline comes, and the file's first bytes (its
fingerprint, see :mod:`watcher.sources.file.position`). A :class:`LineReader`
reads a tail's new bytes with ``pread()``, a chunk at a time, and splits them on
``b"\\n"``: each complete line becomes a :class:`~watcher.sources.base.TextLine`
whose position is just after its newline. A line longer than ``max_line`` is cut
to its first ``max_line`` bytes and the rest skipped up to its newline
(:mod:`watcher.sources.lines`, shared with replay); bytes that are not UTF-8
are replaced (``U+FFFD``) and counted.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from collections.abc import Callable

from watcher.sources.base import Item, TextLine
from watcher.sources.file.position import FINGERPRINT_BYTES, FileKey, FilePosition, Others
from watcher.sources.lines import split_lines

log = logging.getLogger(__name__)


class Tail:
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
        "line_end",
        "path",
        "read_off",
    )

    def __init__(self, fd: int, path: str, st: os.stat_result, now: float) -> None:
        self.fd = fd
        self.path = path
        self.dev = st.st_dev
        self.ino = st.st_ino
        self.read_off = 0
        self.line_end = 0  # just after the last line delivered (or the offset restarted at)
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
        self.read_off = self.line_end = offset
        self.buf = b""
        self.cut = None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


class Trouble:
    """A problem with the followed path, logged once while it lasts.

    The source looks at the path at every poll; a file it cannot open would
    otherwise be logged at every poll. Logged again only when the problem
    changes, and :meth:`over` says when it is gone.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self.current: str | None = None

    def report(self, level: int, text: str) -> None:
        if text != self.current:
            self.current = text
            log.log(level, "%s: %s", self._name, text)

    def over(self, text: str) -> None:
        if self.current is not None:
            self.current = None
            log.info("%s: %s", self._name, text)


def open_tail(
    path: str,
    *,
    name: str,
    clock: Callable[[], float],
    quiet: bool = False,
    trouble: Trouble | None = None,
) -> Tail | None:
    """Open ``path`` for reading at offset 0, or return None if it is not there.

    ``name`` (the source's) prefixes the log messages; ``quiet`` keeps them back
    for files that are only candidates (rotated siblings); ``trouble``, if
    given, logs them once per change instead of at every call.
    """

    def problem(level: int, text: str) -> None:
        if quiet:
            return
        if trouble is not None:
            trouble.report(level, text)
        else:
            log.log(level, "%s: %s", name, text)

    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            problem(logging.WARNING, f"cannot open {path}: {exc}")
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            problem(logging.ERROR, f"{path} is not a regular file")
            os.close(fd)
            return None
        if trouble is not None and not quiet:
            trouble.over(f"{path} can be opened again")
        return Tail(fd, path, st, clock())
    except BaseException:
        os.close(fd)
        raise


def last_line_end(fd: int, size: int, window: int) -> int:
    """Offset just after the file's last newline (0 if it has none in reach)."""
    if size == 0:
        return 0
    start = max(0, size - window - 1)
    data = os.pread(fd, size - start, start)
    index = data.rfind(b"\n")
    if index >= 0:
        return start + index + 1
    return 0 if start == 0 else size


class LineReader:
    """Reads tails' new bytes into lines.

    ``counts`` is the source's counter dict; this adds to ``lines``, ``bytes``,
    ``long_lines_cut``, ``invalid_utf8_lines`` and ``partial_lines_flushed``.
    """

    def __init__(
        self,
        *,
        max_line: int,
        chunk_size: int,
        counts: dict[str, int],
        clock: Callable[[], float],
    ) -> None:
        self._max_line = max_line
        self._chunk = chunk_size
        self._counts = counts
        self._clock = clock

    def read(self, tail: Tail, items: list[Item], budget: int, others: Others = ()) -> int:
        """Append the complete lines of ``tail``'s new bytes; return the bytes read.

        ``others`` goes into every position made: where the other files still
        open were, at the time, after their last line delivered.
        """
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
            self._split(tail, data, items, others)
        if done:
            tail.last_data = self._clock()
            self._counts["bytes"] += done
        return done

    def flush(self, tail: Tail, items: list[Item], others: Others = ()) -> None:
        """Deliver a last line that never got its newline (the file is done with)."""
        partial = tail.cut if tail.cut is not None else tail.buf
        if partial:
            self._counts["partial_lines_flushed"] += 1
            self._counts["lines"] += 1
            position = FilePosition(tail.key, tail.read_off, others)
            items.append(TextLine(self._decode(partial), position))
            tail.line_end = tail.read_off

    def _split(self, tail: Tail, data: bytes, items: list[Item], others: Others) -> None:
        ends: list[int] = []
        parts, cuts = split_lines(tail, data, self._max_line, ends)
        if parts:
            base = tail.read_off - len(data)  # file offset of data[0]
            key = tail.key
            decode = self._decode
            items.extend(
                TextLine(decode(raw), FilePosition(key, base + end, others))
                for raw, end in zip(parts, ends, strict=True)
            )
            tail.line_end = base + ends[-1]
            self._counts["lines"] += len(parts)
        self._counts["long_lines_cut"] += cuts

    def _decode(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self._counts["invalid_utf8_lines"] += 1
            return raw.decode("utf-8", errors="replace")
