"""The header format of a log file, from its last lines (for ``check-config``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from watcher.core.headers import looks_postfix, read_line

TAIL_BYTES = 64 << 10


@dataclass(slots=True)
class Sniffed:
    """What the last lines of a file hold: Postfix-looking lines per header format, and
    the unreadable ones (reason, line)."""

    lines: int = 0
    formats: Counter[str] = field(default_factory=Counter)
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    @property
    def postfix_lines(self) -> int:
        return sum(self.formats.values()) + len(self.unreadable)


def sniff_file(path: str | Path, tail: int = TAIL_BYTES) -> Sniffed:
    """Read the last ``tail`` bytes of ``path`` (OSError if it cannot be read)."""
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        f.seek(max(0, size - tail))
        data = f.read(tail)
    lines = data.decode("utf-8", "replace").split("\n")
    if size > tail:
        lines = lines[1:]  # the first is cut
    out = Sniffed()
    for line in lines:
        if not line:
            continue
        out.lines += 1
        if not looks_postfix(line):
            continue
        r = read_line(line)
        if r.line is None:
            out.unreadable.append((r.reason, line[:500]))
        else:
            out.formats[r.kind] += 1
    return out
