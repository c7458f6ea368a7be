"""Block scanning: the first half of the pipeline's hot path. Pure.

``scan_block`` turns a block of whole log lines into a compact list of the
few things the rest of the pipeline needs, in log order:

* ``(REMOVED, qid, offset)`` — qmgr's ``removed``;
* ``(SENDER, qid, sender, timestamp_text, offset)`` — qmgr's ``from=<..>``;
* ``(DELIVERY, qid, offset, line, lineno, is_loop)`` — a ``to=<..>`` line.
  ``line``/``lineno`` are given (else ``None``/-1) when it may well be counted:
  its message got the null sender in this same block, or it is a forwarding
  loop. Otherwise the line is fetched by ``offset`` only if the join says a
  rule could count it (rare), so ordinary mail costs no string copies;
* ``(OTHER, lineno, line, offset)`` — a line the per-line parser must judge:
  bounce notices, rate-limit reports, odd ``from=<`` lines.

``lineno`` counts from 0 at the block's first line; ``offset`` is a position
in the block (within the event's line).

It needs no state, so blocks can be scanned in parallel (replay of a large
file uses worker processes); :meth:`watcher.pipeline.Pipeline.apply` then
runs the join, the rules and the decisions over the results, in order.
"""

from __future__ import annotations

import re
from typing import Final

from watcher.parse import LOOP_MARKER, LOSS_LINE_RE, LOSS_MARKERS, SCAN_RE

REMOVED: Final = 0
SENDER: Final = 1
DELIVERY: Final = 2
OTHER: Final = 3

# a bounce notice's new queue ID: that message has the null sender
_CHILD_RE = re.compile(r" notification: ([0-9A-Za-z]{6,38})$", re.MULTILINE)

Scanned = tuple[int, list[tuple[object, ...]]]


def timestamp_text(text: str, line_start: int) -> str:
    """The timestamp at the start of a line: RFC 3339 or classic (maybe with a fraction)."""
    if text[line_start : line_start + 1].isdigit():
        return text[line_start : text.find(" ", line_start)]
    if text[line_start + 15 : line_start + 16] == ".":
        return text[line_start : text.find(" ", line_start + 15)]
    return text[line_start : line_start + 15]


def scan_block(text: str) -> Scanned:
    """``(number of lines, events)`` for a block of whole lines (the last may lack "\\n")."""
    out: list[tuple[object, ...]] = []
    append = out.append
    rfind, find = text.rfind, text.find
    local_null: set[str] = set()
    counted_pos, counted_line = 0, 0
    for m in SCAN_RE.finditer(text):
        kind = m.lastgroup
        qid = m.group(1)
        at = m.start()
        if kind == "removed":
            append((REMOVED, qid, at))
            continue
        line_start = rfind("\n", 0, at) + 1
        if kind == "from":
            if find("/qmgr[", line_start, at) < 0:
                continue  # another program's "from=<": not an event
            sender = m.group(2)
            if not sender:
                local_null.add(qid)
            append((SENDER, qid, sender, timestamp_text(text, line_start), at))
            continue
        end = find("\n", at)
        if end < 0:
            end = len(text)
        if kind == "to":
            is_loop = find(LOOP_MARKER, at, end) >= 0
            if qid not in local_null and not is_loop:
                append((DELIVERY, qid, line_start, None, -1, False))
                continue
        counted_line += text.count("\n", counted_pos, line_start)
        counted_pos = line_start
        line = text[line_start:end]
        if kind == "to":
            append((DELIVERY, qid, line_start, line, counted_line, is_loop))
        else:
            append((OTHER, counted_line, line, line_start))
            child = _CHILD_RE.search(line)
            if child is not None:
                local_null.add(child.group(1))
    n_lines = counted_line + text.count("\n", counted_pos)
    if text and not text.endswith("\n"):
        n_lines += 1
    if any(marker in text for marker in LOSS_MARKERS):
        out = _merge_losses(text, out)
    return n_lines, out


def _merge_losses(text: str, events: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    """Put rate-limit report lines among the events, in log order."""
    losses: list[tuple[object, ...]] = [
        (OTHER, text.count("\n", 0, m.start()), m.group(), m.start())
        for m in LOSS_LINE_RE.finditer(text)
    ]
    return sorted(events + losses, key=_position) if losses else events


def _position(ev: tuple[object, ...]) -> int:
    pos = ev[-1] if ev[0] != DELIVERY else ev[2]
    assert isinstance(pos, int)
    return pos
