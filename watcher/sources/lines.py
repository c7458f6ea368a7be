"""Bytes cut into lines the same way by every source: long lines cut, memory bounded.

A line longer than :data:`MAX_LINE` bytes is cut to its first ``MAX_LINE``
bytes and the rest skipped up to its newline; each cut line is counted once.
Between chunks only the incomplete last line is held (:class:`Held`), and never
more than ``MAX_LINE`` bytes of it: a file without a newline costs no more
memory than a file of short lines, and reading it stays linear.

The live file tail (:mod:`watcher.sources.file.tail`) uses :func:`split_lines`
(one item per line, each with its position); replay
(:mod:`watcher.sources.replay`) uses :func:`whole_lines` (blocks of whole
lines, which skip the per-line work when no line in them is too long).
"""

from __future__ import annotations

from typing import Final, Protocol

MAX_LINE: Final = 64 * 1024


class Held(Protocol):
    """Where an incomplete last line waits for the next chunk.

    ``buf``: its bytes so far (at most ``max_line``); ``cut``: the kept start of
    an over-long line whose rest is being skipped (then ``buf`` is empty).
    """

    buf: bytes
    cut: bytes | None


class Pending:
    """A :class:`Held` on its own (the file tail keeps these fields in its ``Tail``)."""

    __slots__ = ("buf", "cut")

    def __init__(self) -> None:
        self.buf = b""
        self.cut: bytes | None = None


def split_lines(
    held: Held, data: bytes, max_line: int, ends: list[int] | None = None
) -> tuple[list[bytes], int]:
    """The complete lines of ``held``'s bytes followed by ``data``, and how many were cut.

    Lines come without their newline, each at most ``max_line`` bytes; what
    follows the last newline stays in ``held``. If ``ends`` is given, the offset
    just after each line's newline is appended to it, counted from ``data[0]``.
    """
    start = -len(held.buf)
    if held.buf:
        data, held.buf = held.buf + data, b""
    parts = data.split(b"\n")
    rest = parts.pop()
    if ends is not None:
        offset = start
        for raw in parts:
            offset += len(raw) + 1
            ends.append(offset)
    cuts = 0
    if parts and held.cut is not None:
        parts[0], held.cut = held.cut, None  # the over-long line ends here
    if parts and max(map(len, parts)) > max_line:
        for i, raw in enumerate(parts):
            if len(raw) > max_line:
                parts[i] = raw[:max_line]
                cuts += 1
    return parts, cuts + _hold(held, rest, max_line)


def whole_lines(held: Held, data: bytes, max_line: int) -> tuple[bytes, int]:
    """Like :func:`split_lines`, as one block: the complete lines, each with its newline."""
    end = data.rfind(b"\n") + 1
    if end == 0:
        return b"", _hold(held, data, max_line)
    first = data.find(b"\n")
    if (
        held.cut is None
        and len(held.buf) + first <= max_line
        and not _long_line_in(data, first + 1, end, max_line)
    ):
        block = held.buf + data[:end] if held.buf else data[:end]
        held.buf = b""
        return block, _hold(held, data[end:], max_line)
    parts, cuts = split_lines(held, data, max_line)
    parts.append(b"")
    return b"\n".join(parts), cuts


def _hold(held: Held, rest: bytes, max_line: int) -> int:
    """Keep ``rest`` (bytes after the last newline) for the next chunk; 1 if it is cut."""
    if held.cut is not None:  # still skipping an over-long line
        held.buf = b""
        return 0
    if held.buf:
        rest = held.buf + rest
    if len(rest) > max_line:
        held.cut, held.buf = rest[:max_line], b""
        return 1
    held.buf = rest
    return 0


def _long_line_in(data: bytes, start: int, end: int, max_line: int) -> bool:
    """True if a line of ``data[start:end]`` (which ends with a newline) exceeds ``max_line``.

    Hops a window of ``max_line + 1`` bytes at a time to the window's last
    newline, so it looks at each byte about once, in C.
    """
    pos = start
    while end - pos > max_line + 1:
        newline = data.rfind(b"\n", pos, pos + max_line + 1)
        if newline < 0:
            return True
        pos = newline + 1
    return False
