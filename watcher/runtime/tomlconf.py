"""Turning pydantic's errors about a TOML file into lines a person can act on.

tomllib keeps no positions, so the line of a key is found again in the text:
the table header (``[a.b]``) and then ``key =`` inside it. That is exact for
the files people write (one key per line) and falls back to the table's
header line otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import ValidationError

_TABLE_RE = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY_RE = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")


def locate(lines: Sequence[str], loc: Sequence[str], start: int = 0, end: int | None = None) -> int:
    """1-based line of the key at ``loc`` (a path of table names and a key).

    ``lines[start:end]`` bounds the search (one ``[[rule]]`` of a file, say),
    and ``loc`` is relative to the table that starts there. Returns the
    closest line found: the key, else its table, else ``start + 1``.
    """
    stop = len(lines) if end is None else end
    base: list[str] = []
    best = start + 1
    table: list[str] = []
    for i in range(start, stop):
        text = lines[i]
        t = _TABLE_RE.match(text)
        if t:
            name = [p.strip().strip("\"'") for p in t.group(1).split(".")]
            if i == start:
                base = name
                table = []
                continue
            table = name[len(base) :] if name[: len(base)] == base else name
            if list(loc[: len(table)]) == table and table:
                best = i + 1
            continue
        k = _KEY_RE.match(text)
        if k and [*table, k.group(1)] == list(loc[: len(table) + 1]):
            return i + 1
    return best


def describe(
    exc: ValidationError,
    text: str,
    path: str,
    label: str = "",
    start: int = 0,
    end: int | None = None,
) -> str:
    """One line per error: ``file:line: label: field: reason (got value)``."""
    lines = text.splitlines()
    out = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        field = ".".join(loc) or "(table)"
        line = locate(lines, loc, start, end)
        got = ""
        if err["type"] not in ("missing", "extra_forbidden") and loc:
            got = f" (got {err['input']!r})"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        prefix = f"{label}: " if label else ""
        out.append(f"{path}:{line}: {prefix}{field}: {msg}{got}")
    return "\n".join(out)
