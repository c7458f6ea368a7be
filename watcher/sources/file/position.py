"""Where the file source is: positions in a file, and the checkpoint that persists one.

A position is (device, inode, offset just after a newline, first bytes of the
file). :meth:`FileSource.commit <watcher.sources.file.source.FileSource.commit>`
persists it as a :class:`Checkpoint`: device, inode, offset, and the length and
SHA-256 of up to the first 4 KiB. The fingerprint covers as many bytes as the
file had when they were read (up to 4 KiB): a file shorter than that at first
keeps a shorter fingerprint in the positions made while it was short, and a
longer one afterwards; a candidate file matches when its first ``fp_len`` bytes
hash the same.

The checkpoint file holds ``{"version": 1, "path": <followed path>, "file":
<checkpoint> | null}`` (``null``: started while the file was absent).

During a rotation two files (or more) are open at once: the rotated one,
drained until it has been quiet for a grace period, and the new one. Lines of
both are delivered interleaved, so one offset cannot say how far the pipeline
got. A position then carries the other open files' offsets too (``others``),
and the checkpoint keeps them as ``"also": [<checkpoint>, ...]`` in ``file``:
after a restart every file named is resumed at its own offset, the rotated
ones (found among the siblings) first. Nothing is read twice and nothing is
skipped. ``also`` is absent outside a rotation, so the file has the shape it
always had; a version of stormwatch that does not know ``also`` ignores it
and resumes only ``file`` (the rest of a rotated file is then lost, as before).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from watcher.state.files import StateError

FINGERPRINT_BYTES: Final = 4096


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


Others = tuple[tuple[FileKey, int], ...]  # (file, offset) of the other files still open


@dataclass(frozen=True, slots=True)
class FilePosition:
    """Just after the newline of a line at ``offset`` in file ``file``.

    ``others``: the other files still open when the line was read (a rotated
    file in its grace period, or the new file while a rotated one is being
    finished), each with the offset just after its last line delivered before
    this one. Empty but during a rotation; positions read together share one
    tuple.
    """

    file: FileKey
    offset: int
    others: Others = ()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A persisted position: the head is kept only as its length and hash."""

    dev: int
    ino: int
    offset: int
    fp_len: int
    fp: str
    also: tuple[Checkpoint, ...] = ()  # the position's ``others``

    @classmethod
    def of(cls, position: FilePosition) -> Checkpoint:
        also = tuple(cls.at(key, offset) for key, offset in position.others)
        return cls.at(position.file, position.offset, also)

    @classmethod
    def at(cls, key: FileKey, offset: int, also: tuple[Checkpoint, ...] = ()) -> Checkpoint:
        return cls(key.dev, key.ino, offset, len(key.head), _digest(key.head), also)

    def all(self) -> list[Checkpoint]:
        """This file's checkpoint and its ``also``: every file to resume, without ``also``."""
        return [Checkpoint(self.dev, self.ino, self.offset, self.fp_len, self.fp), *self.also]

    def matches(self, head: bytes) -> bool:
        """True if a file whose first bytes are ``head`` has this fingerprint."""
        return len(head) >= self.fp_len and _digest(head[: self.fp_len]) == self.fp

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "dev": self.dev,
            "ino": self.ino,
            "offset": self.offset,
            "fp_len": self.fp_len,
            "fp": self.fp,
        }
        if self.also:
            out["also"] = [cp.to_json() for cp in self.also]
        return out


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def state_fields(path: str, checkpoint: Checkpoint | None) -> dict[str, object]:
    """The checkpoint file's fields (besides ``version``) for ``checkpoint`` in ``path``."""
    return {"path": path, "file": checkpoint.to_json() if checkpoint is not None else None}


def parse_state(
    obj: dict[str, object], bad: Callable[[str], StateError]
) -> tuple[str, Checkpoint | None]:
    """Return (path, checkpoint) from a checkpoint file's JSON object.

    Raises ``bad(what is wrong)`` if its fields do not have their shape.
    """
    path = obj.get("path")
    if not isinstance(path, str):
        raise bad("'path' is not a string")
    file = obj.get("file")
    if file is None:
        return path, None
    if not isinstance(file, dict):
        raise bad("'file' is neither null nor an object")
    also = file.get("also", [])
    if not isinstance(also, list) or not all(isinstance(a, dict) for a in also):
        raise bad("'file.also' is not a list of objects")
    others = tuple(_checkpoint(a, "file.also[]", bad) for a in also)
    return path, _checkpoint(file, "file", bad, others)


def _checkpoint(
    obj: dict[str, object],
    where: str,
    bad: Callable[[str], StateError],
    also: tuple[Checkpoint, ...] = (),
) -> Checkpoint:
    ints: dict[str, int] = {}
    for field in ("dev", "ino", "offset", "fp_len"):
        value = obj.get(field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise bad(f"'{where}.{field}' is not a non-negative integer")
        ints[field] = value
    fp = obj.get("fp")
    if not isinstance(fp, str):
        raise bad(f"'{where}.fp' is not a string")
    return Checkpoint(ints["dev"], ints["ino"], ints["offset"], ints["fp_len"], fp, also)
