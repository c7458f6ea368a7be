"""Block scanning: the first half of the pipeline's hot path. Pure.

``scan_block`` turns a block of whole log lines into a compact list of the
few things the rest of the pipeline needs, in log order:

* ``(REMOVED, qid, timestamp_text, offset)`` — qmgr's ``removed`` (``timestamp_text`` is
  "" for a collapsed message: its lines are not looked at again);
* ``(SENDER, qid, sender, timestamp_text, offset)`` — qmgr's ``from=<..>``;
* ``(DELIVERY, qid, offset, line, lineno, is_loop)`` — a ``to=<..>`` line.
  ``line``/``lineno`` are given (else ``None``/-1) when it may well be counted:
  its message got the null sender in this same block, or it is a forwarding
  loop. Otherwise the line is fetched by ``offset`` only if the join says a
  rule could count it (rare), so ordinary mail costs no string copies;
* ``(OTHER, lineno, line, offset)`` — a line the per-line parser must judge:
  bounce notices, rate-limit reports, odd ``from=<`` lines;
* ``(ORIGIN, qid, message, timestamp_text, offset)`` — smtpd's ``client=`` or
  pickup's ``uid=``, only of the origin kinds some rule counts;
* ``(HOP, qid, new_qid, offset)`` — a content filter took the message, status sent,
  and says it re-injected it as ``new_qid``: the copy has the original's origin.

``lineno`` counts from 0 at the block's first line; ``offset`` is a position
in the block (within the event's line).

It needs no state, so blocks can be scanned in parallel (replay of a large
file uses worker processes); :meth:`watcher.pipeline.Pipeline.apply` then
runs the join, the rules and the decisions over the results, in order.
"""

from __future__ import annotations

import re
from typing import Final

from watcher.core.origin import (
    NO_ORIGINS,
    OriginWants,
    origin_kind,
    program_logs_origin,
    queued_as,
)
from watcher.core.parse import LOOP_MARKER, LOSS_LINE_RE, LOSS_MARKERS, QID_RE, SCAN_RE

REMOVED: Final = 0
SENDER: Final = 1
DELIVERY: Final = 2
OTHER: Final = 3
ORIGIN: Final = 4
HOP: Final = 5

# a bounce notice's new queue ID: that message has the null sender
_CHILD_RE = re.compile(r" notification: ([0-9A-Za-z]{6,38})$", re.MULTILINE)

Scanned = tuple[int, list[tuple[object, ...]], int, str, str]


def timestamp_text(text: str, line_start: int) -> str:
    """The timestamp at the start of a line: RFC 3339 or classic (maybe with a fraction)."""
    if text[line_start : line_start + 1].isdigit():
        return text[line_start : text.find(" ", line_start)]
    if text[line_start + 15 : line_start + 16] == ".":
        return text[line_start : text.find(" ", line_start + 15)]
    return text[line_start : line_start + 15]


def _agent_at(text: str, at: int) -> str:
    """The program that logged the line whose ``]: `` is at ``at``: the last part of
    its syslog tag (``smtp`` for ``postfix/relay/smtp[12]``)."""
    lb = text.rfind("[", max(0, at - 16), at)
    return text[text.rfind("/", max(0, lb - 64), lb) + 1 : lb] if lb >= 0 else ""


def _to_skipped_relay(text: str, at: int, end: int, markers: tuple[str, ...]) -> bool:
    """Does the delivery line go to one of the relays no origin rule counts (``[ip]:port,``)?
    A line with a quoted address is not judged here: the quotes may hold anything."""
    if text.find('"', at, end) >= 0:
        return False
    return any(text.find(mk, at, end) >= 0 for mk in markers)


def scan_block(text: str, collapse: bool = True, origins: OriginWants = NO_ORIGINS) -> Scanned:
    """``(lines, events, collapsed, first_ts, last_ts)`` for a block of whole lines.

    With ``collapse`` (when no rule counts deliveries of ordinary mail), a
    message whose whole life is in the block — qmgr's ``from=<sender>`` with a
    sender, its deliveries, ``removed`` — and that no bounce notice or loop
    involves, leaves only its ``removed``: that is all it changes in the
    queue-ID join. ``collapsed`` counts the events so left out; ``first_ts``/``last_ts``
    are the block's first and last qmgr timestamps (for the log's time span).

    ``origins``: the origin kinds some rule counts (smtpd's ``client=``, pickup's
    ``uid=``). Such a line gives ``(ORIGIN, qid, message, timestamp_text, offset)``
    (``message``: the text after ``QID: ``), and that message is kept: not collapsed,
    and its deliveries by the programs the rules count come with their line.
    """
    out: list[tuple[object, ...] | None] = []
    append = out.append
    rfind, find = text.rfind, text.find
    local_null: set[str] = set()
    kinds, agents, skip = origins.kinds, origins.agents, origins.skip_relays
    hops = origins.hop_relays
    kept: set[str] = set()  # qid of a message with an origin some rule counts
    seen: set[str] = set()  # qid whose origin line is in this block (wanted or not)
    pending: dict[str, int] = {}  # qid -> index of its SENDER event, while it may collapse
    collapsed = 0
    first_ts = last_ts = ""
    counted_pos, counted_line = 0, 0
    for m in SCAN_RE.finditer(text):
        kind = m.lastgroup
        qid = m.group(1)
        at = m.start()
        if kind == "removed":
            kept.discard(qid)  # a short queue ID may come back as another message
            seen.discard(qid)
            mine = pending.pop(qid, None)
            if mine is not None:  # born and gone in this block: only "gone" is news
                out[mine] = None
                collapsed += 1
                append((REMOVED, qid, "", at))  # "": as its from= line, taken as it is
                continue
            line_start = rfind("\n", 0, at) + 1
            if text[line_start + 15 : line_start + 16] == " ":
                ts = text[line_start : line_start + 15]  # classic: the common case
            else:
                ts = timestamp_text(text, line_start)
            append((REMOVED, qid, ts, at))
            continue
        if kind == "to":
            # not seen from qmgr in this block: make sure it is Postfix's line
            # (sendmail's sm-mta logs "QID: to=<...>" too)
            if (
                qid not in pending
                and qid not in local_null
                and find("postfix", rfind("\n", 0, at) + 1, at) < 0
            ):
                continue
            end = find("\n", at)
            if end < 0:
                end = len(text)
            is_loop = find(LOOP_MARKER, at, end) >= 0
            quoted = False  # a quoted address may hold anything: the parser judges the line
            if hops and (qid in kept or qid not in seen):
                quoted = find('"', at, end) >= 0
                if quoted or (
                    find(", status=sent (", at, end) >= 0 and _to_skipped_relay(text, at, end, hops)
                ):
                    copy = queued_as(text[at:end])
                    if copy and QID_RE.fullmatch(copy) is not None:
                        if not quoted:
                            append((HOP, qid, copy, at))  # its origin passes to the copy
                        kept.add(copy)
                        pending.pop(copy, None)
                    else:
                        quoted = False
            if quoted and not is_loop and qid not in local_null:
                pass  # with its line, below: the pipeline sees the hop as the parser does
            elif (
                not is_loop
                and qid not in local_null
                and kinds
                and (qid in kept or qid not in seen)  # (not seen: its origin may be earlier)
                and (agents is None or _agent_at(text, at) in agents)
                and not (skip and _to_skipped_relay(text, at, end, skip))
            ):
                pass  # a rule may count it by its origin: with its line, below
            elif not is_loop and qid not in local_null:
                if qid in kept and collapse:
                    collapsed += 1  # kept, but by a program no origin rule counts
                    continue
                collapsed += 1  # a delivery no rule counts is an event all the same
                if qid not in pending:
                    append((DELIVERY, qid, at, None, -1, False))
                    collapsed -= 1  # ... counted by apply instead
                continue
        if kind == "origin":
            if not kinds:
                continue
            seen.add(qid)
            end = find("\n", at)
            body = text[m.end(1) + 2 : end if end >= 0 else len(text)]
            if (
                origin_kind(body) not in kinds
                or not program_logs_origin(_agent_at(text, at), body)
                or QID_RE.fullmatch(qid) is None  # NOQUEUE: nothing to join
            ):
                continue
            line_start = rfind("\n", 0, at) + 1
            if text[line_start + 15 : line_start + 16] == " ":
                ts = text[line_start : line_start + 15]
            else:
                ts = timestamp_text(text, line_start)
            kept.add(qid)
            pending.pop(qid, None)
            append((ORIGIN, qid, body, ts, at))
            continue
        line_start = rfind("\n", 0, at) + 1
        if kind == "from":
            if find("/qmgr[", line_start, at) < 0:
                continue  # another program's "from=<": not an event
            sender = m.group(2)
            if text[line_start + 15 : line_start + 16] == " ":
                ts = text[line_start : line_start + 15]  # classic: the common case
            else:
                ts = timestamp_text(text, line_start)
            last_ts = ts
            if not first_ts:
                first_ts = ts
            if not sender:
                local_null.add(qid)
            elif collapse and qid not in kept and (not kinds or qid in seen):
                # (with origins wanted, a message whose origin line is in an earlier
                # block may have one a rule counts: it is not collapsed)
                if qid in pending:  # seen twice in one block: keep both
                    del pending[qid]
                else:
                    pending[qid] = len(out)
            append((SENDER, qid, sender, ts, at))
            continue
        end = find("\n", at)
        if end < 0:
            end = len(text)
        pending.pop(qid, None)  # a loop or a bounce notice involves it: keep its events
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
                pending.pop(child.group(1), None)
    n_lines = counted_line + text.count("\n", counted_pos)
    if text and not text.endswith("\n"):
        n_lines += 1
    events = [e for e in out if e is not None]
    if any(marker in text for marker in LOSS_MARKERS):
        events = _merge_losses(text, events)
    return n_lines, events, collapsed, first_ts, last_ts


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
