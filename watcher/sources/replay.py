"""Finished logs for replay: plain or gzip files, or standard input.

Logs are read in large binary blocks cut at the last newline, so a block
holds whole lines (and whole UTF-8 sequences); invalid UTF-8 is replaced,
never fatal. A line over 64 KiB is cut and counted (``long_lines_cut``) by
the same code as the live file source (:mod:`watcher.sources.lines`): a log
without newlines costs the memory of one block and time linear in its size.
"""

from __future__ import annotations

import gzip
import io
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

from watcher.core.origin import NO_ORIGINS, OriginWants
from watcher.sources.lines import MAX_LINE, Pending, whole_lines

if TYPE_CHECKING:
    from watcher.core.scanner import Scanned

BLOCK = 1 << 20  # 1 MiB: big enough to amortise, small for memory
GZIP_MAGIC = b"\x1f\x8b"


class ReplayInput:
    """One input named on the command line (``-`` is standard input)."""

    def __init__(self, name: str, *, stdin: BinaryIO | None = None) -> None:
        self.name = name
        self._stdin = stdin
        self._raw: io.BufferedReader | None = None
        self.is_gzip = False
        self._stream: BinaryIO | None = None
        self.long_lines_cut = 0

    @property
    def is_stdin(self) -> bool:
        return self.name == "-"

    def size(self) -> int | None:
        """Bytes on disk (compressed size for gzip), None for stdin."""
        return None if self.is_stdin else Path(self.name).stat().st_size

    def mtime(self) -> datetime | None:
        if self.is_stdin:
            return None
        return datetime.fromtimestamp(Path(self.name).stat().st_mtime, UTC)

    def open(self) -> None:
        raw: io.BufferedReader
        if self.is_stdin:
            given = self._stdin if self._stdin is not None else sys.stdin.buffer
            raw = given if isinstance(given, io.BufferedReader) else io.BufferedReader(given)  # type: ignore[arg-type]
        else:
            raw = open(self.name, "rb")  # noqa: SIM115 - closed in close()
        self._raw = raw
        gz = self.is_gzip = raw.peek(2)[:2] == GZIP_MAGIC
        self._stream = cast(BinaryIO, gzip.GzipFile(fileobj=raw)) if gz else raw

    def close(self) -> None:
        if self._stream is not None and self._stream is not self._raw:
            self._stream.close()
        if self._raw is not None and not self.is_stdin:
            self._raw.close()
        self._raw = self._stream = None

    def consumed(self) -> int:
        """Bytes read from disk so far (for a progress bar)."""
        if self._raw is None or self.is_stdin:
            return 0
        try:
            return self._raw.tell()
        except OSError:
            return 0

    def blocks(self, on_block: Callable[[], None] | None = None) -> Iterator[str]:
        """Decoded blocks of whole lines, each line cut to ``MAX_LINE``; the last may lack
        its newline."""
        if self._stream is None:
            self.open()
        stream = self._stream
        assert stream is not None
        held = Pending()
        while chunk := stream.read(BLOCK):
            block, cuts = whole_lines(held, chunk, MAX_LINE)
            self.long_lines_cut += cuts
            if block:
                yield block.decode("utf-8", "replace")
                if on_block is not None:
                    on_block()
        last = _last_line(held)
        if last:
            yield last.decode("utf-8", "replace")


def _last_line(held: Pending) -> bytes:
    """What is left after the last newline: a last line that never got its newline."""
    return held.cut if held.cut is not None else held.buf


# -- scanning a large file in parallel --------------------------------------------------

PARALLEL_MIN_BYTES = 16 << 20
RANGE_BYTES = 2 << 20

# start, end, what scan_block found, lines cut in the range, its header format
# (watcher.core.headers.block_kind: None if the range must be read line by line)
ScannedRange = tuple[int, int, "Scanned", int, tuple[str | None, int]]


def line_ranges(path: str, size: int, span: int | None = None) -> list[tuple[int, int]] | None:
    """Byte ranges of about ``span`` bytes covering the file, each ending after a newline.

    None if a range cannot end within ``MAX_LINE`` bytes of where it should
    (a line longer than that, or no newline at all): the file is then read in
    order, in blocks, where long lines cost no memory.
    """
    span = span or RANGE_BYTES
    ranges = []
    pos = 0
    with open(path, "rb") as f:
        while pos < size:
            f.seek(min(pos + span, size))
            rest = f.readline(MAX_LINE + 1) if pos + span < size else b""
            if len(rest) > MAX_LINE:
                return None
            end = min(pos + span, size) + len(rest)
            ranges.append((pos, end))
            pos = end
    return ranges


def read_range(path: str, start: int, end: int) -> tuple[str, int]:
    """The lines of a range from :func:`line_ranges`, cut as :meth:`ReplayInput.blocks`
    cuts them, and how many were cut."""
    with open(path, "rb") as f:
        f.seek(start)
        held = Pending()
        block, cuts = whole_lines(held, f.read(end - start), MAX_LINE)
    return (block + _last_line(held)).decode("utf-8", "replace"), cuts


def _scan_range(job: tuple[str, int, int, bool, OriginWants]) -> ScannedRange:
    """Worker: scan one byte range of a file (runs in a child process)."""
    from watcher.core.headers import block_kind
    from watcher.core.scanner import scan_block

    path, start, end, collapse, origins = job
    text, cuts = read_range(path, start, end)
    return start, end, scan_block(text, collapse, origins), cuts, block_kind(text)


def scan_parallel(
    path: str,
    ranges: list[tuple[int, int]],
    workers: int,
    collapse: bool,
    origins: OriginWants = NO_ORIGINS,
) -> Iterator[ScannedRange]:
    """Scanned ``ranges`` of ``path`` (from :func:`line_ranges`), in file order, scanned by
    ``workers`` processes."""
    import multiprocessing

    jobs = [(path, s, e, collapse, origins) for s, e in ranges]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers) as pool:
        yield from pool.imap(_scan_range, jobs, chunksize=1)
