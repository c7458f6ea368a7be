"""Finished logs for replay: plain or gzip files, or standard input.

Logs are read in large binary blocks cut at the last newline, so a block
holds whole lines (and whole UTF-8 sequences); invalid UTF-8 is replaced,
never fatal.
"""

from __future__ import annotations

import gzip
import io
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

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
        """Decoded blocks of whole lines; the last may lack its newline."""
        if self._stream is None:
            self.open()
        stream = self._stream
        assert stream is not None
        rest = b""
        while True:
            chunk = stream.read(BLOCK)
            if not chunk:
                break
            cut = chunk.rfind(b"\n") + 1
            if cut == 0:
                rest += chunk
                continue
            yield (rest + chunk[:cut]).decode("utf-8", "replace")
            rest = chunk[cut:]
            if on_block is not None:
                on_block()
        if rest:
            yield rest.decode("utf-8", "replace")


# -- scanning a large file in parallel --------------------------------------------------

PARALLEL_MIN_BYTES = 16 << 20
RANGE_BYTES = 2 << 20

ScannedRange = tuple[int, int, "Scanned"]  # start, end, what scan_block found


def line_ranges(path: str, size: int, span: int | None = None) -> list[tuple[int, int]]:
    """Byte ranges of about ``span`` bytes covering the file, each ending after a newline."""
    span = span or RANGE_BYTES
    ranges = []
    pos = 0
    with open(path, "rb") as f:
        while pos < size:
            f.seek(min(pos + span, size))
            rest = f.readline() if pos + span < size else b""
            end = min(pos + span, size) + len(rest)
            ranges.append((pos, end))
            pos = end
    return ranges


def read_range(path: str, start: int, end: int) -> str:
    with open(path, "rb") as f:
        f.seek(start)
        return f.read(end - start).decode("utf-8", "replace")


def _scan_range(job: tuple[str, int, int, bool]) -> ScannedRange:
    """Worker: scan one byte range of a file (runs in a child process)."""
    from watcher.core.scanner import scan_block

    path, start, end, collapse = job
    return start, end, scan_block(read_range(path, start, end), collapse)


def scan_parallel(path: str, workers: int, collapse: bool) -> Iterator[ScannedRange]:
    """Scanned ranges of ``path``, in file order, scanned by ``workers`` processes."""
    import multiprocessing

    size = Path(path).stat().st_size
    jobs = [(path, s, e, collapse) for s, e in line_ranges(path, size)]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers) as pool:
        yield from pool.imap(_scan_range, jobs, chunksize=1)
