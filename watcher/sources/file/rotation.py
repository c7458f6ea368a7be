"""Which files to read: the one at the path now, and those rotated away from it.

On every poll the source asks whether the path still names the file it holds
open (``stat()`` of the path) and whether that file shrank or changed its first
bytes (``fstat()``, ``pread()``):

* **rename** (logrotate ``create``, ``postfix logrotate``) and **symlink swap**:
  the path now names another file. The old descriptor is kept open and read
  to its end *before* anything of the new file at each look, and closed only
  once it has had no new data for ``rotated_quiet`` seconds (5) after the new
  file got data, or for ``rotate_grace`` seconds (300) while the new file is
  still empty. A writer may well go on writing the old file after the new one
  has data (a second process that opened it, rsyslog before its HUP): as
  Vector and Filebeat do, the old file is drained until it has gone quiet.
  Its lines and the new file's then come interleaved, in the order read;
  the positions carry both files' offsets (see
  :mod:`~watcher.sources.file.position`). Lines read from rotated files are
  counted (``rotated_lines``). What reaches the old file after it was closed
  is not read.
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

The rotated siblings are ``path + suffix`` for each of ``rotated_suffixes`` (by
default ``.1``; a glob suffix such as ``-[0-9]*`` covers logrotate's
``dateext``; compressed rotations such as ``.2.gz`` are not read).
"""

from __future__ import annotations

import errno
import glob
import logging
import os
from collections.abc import Callable, Collection, Sequence
from typing import Final

from watcher.sources.file.position import FINGERPRINT_BYTES, Checkpoint
from watcher.sources.file.tail import Tail, Trouble, open_tail
from watcher.sources.file.wake import Wakeup

log = logging.getLogger(__name__)

COMPRESSED_SUFFIXES: Final = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".Z")


class RotationTracker:
    """The file at the path (``current``) and the rotated ones still being read (``old``).

    ``old`` is read to its end, oldest first, before ``current``. ``counts`` is
    the source's counter dict; this adds to ``rotations``, ``truncations`` and
    ``partial_lines_dropped``. ``wakeup`` learns whether a rotated file is being
    finished; ``on_new_file`` is called when the path names a new file.
    """

    def __init__(
        self,
        path: str,
        *,
        name: str,
        suffixes: Sequence[str],
        counts: dict[str, int],
        wakeup: Wakeup,
        on_new_file: Callable[[], None],
        clock: Callable[[], float],
    ) -> None:
        self.path = path
        self.current: Tail | None = None
        self.old: list[Tail] = []
        self._name = name
        self._suffixes = tuple(suffixes)
        self._counts = counts
        self._wakeup = wakeup
        self._on_new_file = on_new_file
        self._clock = clock
        self._absent_logged = False
        self._trouble = Trouble(name)  # cannot stat or open the path: said once per change
        # (dev, ino) -> first bytes of the files followed and closed since, oldest first
        self._closed_heads: dict[tuple[int, int], bytes] = {}

    def open(self, path: str, *, quiet: bool = False) -> Tail | None:
        """Open ``path`` at offset 0, or None if it is not there (see :func:`open_tail`).

        Problems with the followed path are logged once per change.
        """
        trouble = self._trouble if path == self.path else None
        return open_tail(path, name=self._name, clock=self._clock, quiet=quiet, trouble=trouble)

    def retire(self, tail: Tail) -> None:
        """Read ``tail`` to its end before the current file."""
        tail.last_data = self._clock()
        self.old.append(tail)
        self._update_wakeup()

    def done(self, tail: Tail) -> None:
        """Close a rotated-away file for good, remembering how it started."""
        log.debug("%s: done with rotated file %s (inode %d)", self._name, tail.path, tail.ino)
        tail.close()
        self._closed_heads[(tail.dev, tail.ino)] = tail.head
        while len(self._closed_heads) > 64:
            del self._closed_heads[next(iter(self._closed_heads))]
        self.old.remove(tail)
        self._update_wakeup()

    def close(self) -> None:
        for tail in [*self.old, *([self.current] if self.current else [])]:
            tail.close()
        self.old.clear()
        self.current = None

    def note_absent(self) -> None:
        if os.path.lexists(self.path):
            return  # there but unreadable: opening it said why (cannot open, not a file)
        if not self._absent_logged:
            self._absent_logged = True
            log.warning("%s: file does not exist (yet): waiting for it", self._name)

    def describe_siblings(self) -> str:
        """The sibling patterns, for messages."""
        return ", ".join(self.path + s for s in self._suffixes) or "none configured"

    # ------------------------------------------------------------- detection

    def check_path(self) -> None:
        """Notice that the path names another file now (rename, delete, symlink swap)."""
        try:
            st = os.stat(self.path)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                self._trouble.report(logging.WARNING, f"cannot stat: {exc}")
            else:
                self._trouble.current = None  # absent is said by note_absent
            st = None
        current = self.current
        if st is None:
            if current is not None:
                log.info("%s: file gone (renamed or deleted): finishing it", self._name)
                self._counts["rotations"] += 1
                self.retire(current)
                self.current = None
            self.note_absent()
            return
        if current is not None and (st.st_dev, st.st_ino) == (current.dev, current.ino):
            self._trouble.over("can be looked at again")
            return
        tail = self.open(self.path)
        if tail is None:
            return
        if current is not None:
            if (tail.dev, tail.ino) == (current.dev, current.ino):
                tail.close()
                return
            log.info(
                "%s: rotated (inode %d -> %d): finishing the old file first",
                self._name,
                current.ino,
                tail.ino,
            )
            self._counts["rotations"] += 1
            self.retire(current)
        elif self._absent_logged:
            log.info("%s: file appeared, reading it from the start", self._name)
        self._absent_logged = False
        self.current = tail
        self._on_new_file()

    def check_truncation(self, tail: Tail) -> None:
        """copytruncate: the file shrank below our offset, or its first bytes changed."""
        if tail.read_off == 0:
            self.check_copied_while_empty(tail)
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
            copy.line_end = tail.line_end
            self.retire(copy)
            log.warning(
                "%s: truncated (copytruncate); finishing the copy %s from offset %d first",
                self._name,
                copy.path,
                tail.read_off,
            )
        else:
            if tail.buf or tail.cut is not None:
                self._counts["partial_lines_dropped"] += 1
            log.warning(
                "%s: truncated at offset %d (copytruncate?) and no copy found among %s: "
                "reading it again from the start",
                self._name,
                tail.read_off,
                self.describe_siblings(),
            )
        tail.restart_at(0)
        tail.set_head(os.pread(tail.fd, FINGERPRINT_BYTES, 0))
        self.check_copied_while_empty(tail)  # the siblings now, should it be copied again

    def check_copied_while_empty(self, tail: Tail) -> None:
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
            copy = self.open(sibling, quiet=True)
            if copy is None:
                continue
            if copy.size() == 0 or self._followed(copy):
                copy.close()
                continue
            self._counts["truncations"] += 1
            self.retire(copy)
            log.warning(
                "%s: copied to %s and truncated since the last look: reading the copy first",
                self._name,
                copy.path,
            )
            return

    # --------------------------------------------------------------- finding

    def find_rotated(self, cp: Checkpoint, exclude: Collection[tuple[int, int]]) -> Tail | None:
        """The rotated sibling holding the checkpointed file: by inode first, then by content.

        ``exclude``: (device, inode) of the files already claimed.
        """
        by_content: Tail | None = None
        for sibling in self._siblings():
            tail = self.open(sibling, quiet=True)
            if tail is None:
                continue
            usable = (
                (tail.dev, tail.ino) not in exclude
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

    def _followed(self, other: Tail) -> bool:
        """True if ``other`` is a file we hold open, or one we followed (same inode and start)."""
        ident = (other.dev, other.ino)
        for tail in (self.current, *self.old):
            if tail is not None and (tail.dev, tail.ino) == ident:
                return True
        head = self._closed_heads.get(ident)
        return bool(head) and other.head.startswith(head or b"")

    def _find_copy(self, tail: Tail) -> Tail | None:
        """The sibling that starts with the bytes the truncated file started with."""
        if not tail.head:
            return None
        for sibling in self._siblings():
            copy = self.open(sibling, quiet=True)
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

    def _update_wakeup(self) -> None:
        self._wakeup.aim(self.path)
        self._wakeup.any = bool(self.old)


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0
