"""Syslog header formats: which one a line (and a source) is written in, and the rare
ones rewritten into a form the fast path reads. Pure: no I/O, no clock.

The fast path (:mod:`watcher.core.scanner`, :meth:`watcher.core.parse.Parser.parse_known`)
reads three header formats as they are:

* ``classic``: ``Oct 16 17:52:52 host prog[pid]: msg`` (syslog, ``journalctl -o short``,
  postlogd's ``maillog_file`` with the day zero-padded),
* ``classic-precise``: the same with a fraction (``journalctl -o short-precise``,
  ``maillog_file``),
* ``rfc3339``: ``2026-11-28T02:50:43[.123456](Z|+00:00|+0000) host prog[pid]: msg``
  (rsyslog's RFC 3339 template, ``journalctl -o short-iso``, ``short-iso-precise``).

Every other format a Postfix host may write is rewritten, line by line, into
``ISO-TIMESTAMP host prog[pid]: msg`` (:func:`read_line`): ``rfc3339-space`` (a space
for the ``T``), ``year-first`` (``2013 Jun 16 14:49:42.123 host ...``), ``rfc5424``
(``<22>1 TIMESTAMP HOST APP PROCID MSGID SD [BOM]MSG``), ``short-full``
(``Mon 2026-11-30 17:52:52 UTC host ...``), ``short-unix`` (``1732989172.123456 host ...``)
and ``classic-unpadded`` (``Jan 1 00:00:00``). A tag without the colon after the PID
(``prog[pid] msg``) is rewritten too (``+bare-tag`` is added to the format's name).

A source's format is found on its Postfix-looking lines (:func:`looks_postfix`) and
kept per source (:class:`SourceHeaders`): a block whose first and last
Postfix-looking lines, and a few spread between them, are in a fast format is read as
it is (:func:`block_kind`: ``SAMPLES`` lines looked at, whatever the block's size); any
other block is read line by line,
rewritten, and its Postfix-looking lines whose header no format reads are counted
as unreadable and blanked (never silently skipped).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta

from watcher.core.times import EPOCH

CLASSIC = "classic"
CLASSIC_PRECISE = "classic-precise"
RFC3339 = "rfc3339"
UNKNOWN = "unknown"
JOURNAL = "journal"
FAST = frozenset({CLASSIC, CLASSIC_PRECISE, RFC3339})

EXAMPLES = {
    CLASSIC: "Oct 16 17:52:52 host prog[pid]: msg",
    CLASSIC_PRECISE: "Oct 16 17:52:52.123456 host prog[pid]: msg",
    RFC3339: "2026-11-28T02:50:43.123456+00:00 host prog[pid]: msg",
    "rfc3339-space": "2026-11-28 02:50:43.123456+00:00 host prog[pid]: msg",
    "year-first": "2013 Jun 16 14:49:42.123 host prog[pid]: msg",
    "rfc5424": "<22>1 2026-11-30T17:52:52.123456+00:00 host prog PID - - msg",
    "short-full": "Mon 2026-11-30 17:52:52 UTC host prog[pid]: msg",
    "short-unix": "1732989172.123456 host prog[pid]: msg",
    "classic-unpadded": "Jan 1 00:00:00 host prog[pid]: msg",
    JOURNAL: "journal fields (__REALTIME_TIMESTAMP, SYSLOG_IDENTIFIER, _PID, MESSAGE)",
    UNKNOWN: "no format stormwatch reads",
}

# A line that looks like Postfix's: a postfix.../... tag with "[pid]", or with " PID "
# as RFC 5424 writes it, or followed by a queue ID where one belongs.
_LOOKS_RE = re.compile(
    r"(?:^|[\s>])postfix[\w.-]*(?:/[\w.-]+)+(?:\[\d+\]|:? +(?:\d+ |[0-9A-Za-z]{6,}: ))"
)

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    )
}
_CLASSIC_RE = re.compile(r"([A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d(\.\d+)?) (\S+ .*)", re.DOTALL)
_UNPADDED_RE = re.compile(r"([A-Z][a-z]{2}) (\d \d\d:\d\d:\d\d(?:\.\d+)?) (\S+ .*)", re.DOTALL)
_ISO = r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"
_RFC3339_RE = re.compile(rf"({_ISO}) (\S+ .*)", re.DOTALL)
_YEAR_FIRST_RE = re.compile(
    r"(\d{4}) ([A-Z][a-z]{2}) ([ 0-9]\d) (\d\d:\d\d:\d\d(?:\.\d+)?) (\S+ .*)", re.DOTALL
)
_SHORT_FULL_RE = re.compile(
    r"[A-Z][a-z]{2} (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?) ([A-Za-z][\w+-]*) (\S+ .*)",
    re.DOTALL,
)
_UNIX_RE = re.compile(r"(\d{9,11})(?:\.(\d{1,9}))? (\S+ .*)", re.DOTALL)
# <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]; SD is "-" or
# one or more [id k="v" ...] elements (a value may hold \" \] \\).
_RFC5424_RE = re.compile(
    r"<\d{1,3}>1 (\S+) (\S+) (\S+) (\S+) \S+ "
    r"(?:-|(?:\[[^\]\"\s]+(?: [^=\s\]]+=\"(?:[^\"\\]|\\.)*\")*\])+)(?: \ufeff?(.*)|$)",
    re.DOTALL,
)
# after "host ": "prog[pid]: msg" (fast) or "prog[pid] msg" (bare: rewritten)
_BARE_TAG_RE = re.compile(r"([^\s\[]+)\[(\d+)\] (?!\s)")
_UTC_NAMES = frozenset({"UTC", "GMT", "UT", "Z"})


@dataclass(frozen=True, slots=True)
class Read:
    """A line's header: its format, the line in a form the fast path reads (the line
    itself when it already is), or None and why not."""

    kind: str
    line: str | None
    reason: str = ""


def looks_postfix(line: str) -> bool:
    """Whether a line carries a Postfix tag (or a queue ID after one)."""
    return "postfix" in line and _LOOKS_RE.search(line) is not None


def read_line(line: str) -> Read:
    """The header format of one line, and the line rewritten for the fast path."""
    c = line[:1]
    if c == "<":
        return _rfc5424(line)
    if c.isdigit():
        m = _RFC3339_RE.match(line)
        if m is not None:
            ts, rest = m.groups()
            if ts[10] == "T":
                return _tag(RFC3339, line, ts, rest)
            return _tag("rfc3339-space", None, f"{ts[:10]}T{ts[11:]}", rest)
        m = _YEAR_FIRST_RE.match(line)
        if m is not None:
            year, mon, day, hms, rest = m.groups()
            month = _MONTHS.get(mon)
            if month is None:
                return Read("year-first", None, f"unknown month {mon!r}")
            return _tag("year-first", None, f"{year}-{month:02d}-{day.strip():0>2}T{hms}", rest)
        m = _UNIX_RE.match(line)
        if m is not None:
            secs, frac, rest = m.groups()
            micro = int((frac or "0")[:6].ljust(6, "0"))
            when = EPOCH + timedelta(seconds=int(secs), microseconds=micro)
            return _tag("short-unix", None, when.isoformat(), rest)
        return Read(UNKNOWN, None, "unknown header format")
    m = _CLASSIC_RE.match(line)
    if m is not None:
        ts, frac, rest = m.groups()
        return _tag(CLASSIC_PRECISE if frac else CLASSIC, line, ts, rest)
    m = _SHORT_FULL_RE.match(line)
    if m is not None:
        date, hms, zone, rest = m.groups()
        offset = "+00:00" if zone in _UTC_NAMES else ""  # other names: the configured zone
        return _tag("short-full", None, f"{date}T{hms}{offset}", rest)
    m = _UNPADDED_RE.match(line)
    if m is not None:
        mon, time, rest = m.groups()
        return _tag("classic-unpadded", None, f"{mon}  {time}", rest)
    return Read(UNKNOWN, None, "unknown header format")


def _tag(kind: str, line: str | None, ts: str, rest: str) -> Read:
    """``rest`` is "host prog[pid]: msg" after ``ts`` and a space; a bare tag
    ("prog[pid] msg") gets its colon. ``line`` is the line itself when its header is
    already one the fast path reads."""
    tag_at = rest.find(" ") + 1
    m = _BARE_TAG_RE.match(rest, tag_at)
    if m is not None:
        return Read(kind + "+bare-tag", f"{ts} {rest[:tag_at]}{m[1]}[{m[2]}]: {rest[m.end() :]}")
    return Read(kind, line if line is not None else f"{ts} {rest}")


def _rfc5424(line: str) -> Read:
    m = _RFC5424_RE.match(line)
    if m is None:
        return Read("rfc5424", None, "RFC 5424 header not understood")
    ts, host, app, procid, msg = m.groups()
    if ts == "-":
        return Read("rfc5424", None, "RFC 5424 line without a timestamp")
    if ts[:1] != "2" or "T" not in ts:  # rfc5424 wants RFC 3339; a year before 2000 is wrong
        return Read("rfc5424", None, f"RFC 5424 timestamp not RFC 3339: {ts[:40]!r}")
    tag = f"{app}[{procid}]" if procid.isdigit() else app
    return Read("rfc5424", f"{ts} {host} {tag}: {msg or ''}")


def kind_of(line: str) -> str | None:
    """The format of a Postfix-looking line if the fast path reads it as it is, else None."""
    r = read_line(line)
    return r.kind if r.line is line and r.kind in FAST else None


def _postfix_line(text: str, forward: bool, since: int = 0) -> tuple[str, int] | None:
    """The first Postfix-looking line of a block from ``since`` (or its last) and where
    it starts; a few tries."""
    pos = text.find("postfix", since) if forward else text.rfind("postfix")
    for _ in range(8):
        if pos < 0:
            return None
        start = text.rfind("\n", 0, pos) + 1
        end = text.find("\n", pos)
        if end < 0:
            end = len(text)
        line = text[start:end]
        if looks_postfix(line):
            return line, start
        pos = text.find("postfix", end) if forward else text.rfind("postfix", 0, start)
    return None


SAMPLES = 8  # Postfix-looking lines looked at in a block, wherever its size


def block_kind(text: str) -> tuple[str | None, int]:
    """The fast format of a block's first Postfix-looking line and its line number in
    the block (from 0) if that line, the last one and a few in between are all in a
    format the fast path reads as it is; ``""`` if it has none; None if one is not."""
    first = _postfix_line(text, True)
    if first is None:
        return "", 0
    lineno = text.count("\n", 0, first[1])
    kind = kind_of(first[0])
    if kind is None:
        return None, lineno
    last = _postfix_line(text, False)
    if last is None or last[1] == first[1]:
        return kind, lineno
    if kind_of(last[0]) is None:
        return None, lineno
    step = (last[1] - first[1]) // (SAMPLES - 1)
    for i in range(1, SAMPLES - 1) if step > 0 else ():
        found = _postfix_line(text, True, first[1] + i * step)
        if found is not None and found[1] < last[1] and kind_of(found[0]) is None:
            return None, lineno
    return kind, lineno


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A Postfix-looking line whose header no format reads."""

    source: str
    lineno: int
    reason: str
    text: str


@dataclass(frozen=True, slots=True)
class FormatChange:
    source: str
    lineno: int
    old: str | None  # None: the first format found
    new: str


BLIND_LINES = 10  # Postfix-looking lines in a row, none readable: the watcher is blind


@dataclass(slots=True)
class SourceHeaders:
    """One source's header format, and its unreadable lines."""

    source: str
    format: str | None = None  # None until a Postfix-looking line is seen
    changes: list[FormatChange] = field(default_factory=list)
    changes_dropped: int = 0
    blind_run: int = 0  # Postfix-looking lines unreadable since the last readable one
    blind_first: Unreadable | None = None
    blind_reported: bool = False
    unreadable: int = 0
    samples: deque[Unreadable] = field(default_factory=lambda: deque(maxlen=10))

    def saw(self, kind: str, lineno: int) -> FormatChange | None:
        """A readable Postfix-looking line in ``kind``: the change of format, if any."""
        self.blind_run = 0
        self.blind_first = None
        self.blind_reported = False
        return self._change(kind, lineno)

    def _change(self, kind: str, lineno: int) -> FormatChange | None:
        if kind == self.format:
            return None
        change = FormatChange(self.source, lineno, self.format, kind)
        self.format = kind
        if len(self.changes) < 20:
            self.changes.append(change)
        else:
            self.changes_dropped += 1
        return change

    def missed(self, lineno: int, reason: str, text: str) -> Unreadable:
        bad = Unreadable(self.source, lineno, reason, text[:500])
        self.unreadable += 1
        self.samples.append(bad)
        self.blind_run += 1
        if self.blind_first is None:
            self.blind_first = bad
        return bad

    @property
    def blind(self) -> bool:
        """Postfix-looking lines are coming in, and none of the last few was readable."""
        return self.blind_run >= BLIND_LINES

    def rewrite(self, text: str, start: int) -> tuple[str, list[FormatChange], list[Unreadable]]:
        """A block read line by line: each line in the fast path's form; an unreadable
        Postfix-looking line is counted and blanked (so nothing counts it twice).
        Returns the new text, the changes of format and the unreadable lines."""
        lines = text.split("\n")
        changes: list[FormatChange] = []
        missed: list[Unreadable] = []
        for i, line in enumerate(lines):
            if not line:
                continue
            r = read_line(line)
            if r.line is None:
                if looks_postfix(line):
                    missed.append(self.missed(start + i, r.reason, line))
                    if self.blind and self.blind_first is not None:
                        change = self._change(UNKNOWN, self.blind_first.lineno)
                        if change is not None:
                            changes.append(change)
                    lines[i] = ""
                continue
            if r.line is not line:
                lines[i] = r.line
            if "postfix" in line and looks_postfix(line):
                change = self.saw(r.kind, start + i)
                if change is not None:
                    changes.append(change)
        return "\n".join(lines), changes, missed
