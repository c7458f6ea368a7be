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
