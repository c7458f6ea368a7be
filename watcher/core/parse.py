"""One log line -> one typed event, or nothing. Pure: no I/O, no wall clock.

Three line formats are read on the fast path, per line:

* classic syslog ``Oct 16 17:52:52 host prog[pid]: msg`` (day space-padded),
* Postfix's own ``maillog_file`` (postlogd; day zero-padded, optionally with
  fractional seconds),
* RFC 3339 ``2026-11-28T02:50:43.123456+00:00 host prog[pid]: msg``.

A line in any other header format (:mod:`watcher.core.headers`: RFC 5424,
year-first, ``journalctl -o short-full``/``short-unix``...) is rewritten into
the RFC 3339 form and read again; a Postfix-looking line whose header no format
reads is counted as unreadable (``ParseStats.unreadable``), with the reason.

Records from the journal skip the text header: :meth:`Parser.parse_record`
takes the fields as they are.

The hot path is written for throughput: a line that is not from Postfix, or a
Postfix line of a kind no rule looks at (smtpd connects, cleanup
message-ids...), costs a few string searches and no allocation beyond slices;
timestamps are converted only for lines that become events, and cached.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from watcher.core.events import (
    AnyEvent,
    BounceNotice,
    Delivery,
    ForwardingLoop,
    LogLoss,
    QueueSender,
    Removed,
    Submitted,
)
from watcher.core.headers import looks_postfix, read_line
from watcher.core.origin import parse_origin, program_logs_origin
from watcher.core.times import micros

# Short queue IDs: upper-case hex, 6 or more. Long queue IDs
# (enable_long_queue_ids): 12 or more of the 52-letter alphabet (digits and
# consonants, both cases). Postfix separates the time part from the inode
# part with a letter, so no stricter structure is assumed.
QID_RE = re.compile(r"(?:[0-9A-F]{6,}|[0-9BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz]{12,})")

# An address between <>. Postfix logs it in external form (info_log_address_format,
# 3.5+): a local part that is not a dot-string is a quoted string ("..." with \" and
# \\ escaped: quote_822_local), then @domain. Such a local part may hold ">, " and
# whole fake fields (a sender can choose it): it runs to its closing quote. Anything
# else (the internal form) is read up to the first ">" after which the line goes on.
ADDR = r'(?:"(?:[^"\\\n]|\\.)*+"(?:@[^>\n]*)?|.*?)'

# dsn= is absent before Postfix 2.3; statuses may be hyphenated
# ("undeliverable-but-not-cached" for address probes, "force-expired" since 3.1).
DELIVERY_RE = re.compile(
    rf"to=<(?P<to>{ADDR})>, (?:orig_to=<(?P<orig>{ADDR})>, )?relay=(?P<relay>[^,\n]*), "
    r"(?:[a-z_]+=[^,\n]*, )*?(?:dsn=(?P<dsn>[0-9.]+), )?status=(?P<status>[A-Za-z]+(?:-[A-Za-z]+)*)"
    r"(?: \((?P<detail>.*))?$",  # the detail's closing ")" is stripped after: lines get cut
    re.MULTILINE,
)
_SENDER_RE = re.compile(rf"from=<(?P<from>{ADDR})>, size=(?P<size>\d+), nrcpt=(?P<nrcpt>\d+)")
# qmgr returning a message that stayed too long (or postsuper -e): the sender, again, just
# before bounce makes the notification; its first from= line may be days back in the log.
_EXPIRED_RE = re.compile(
    rf"from=<(?P<from>{ADDR})>, status=(?:expired|force-expired), returned to sender$"
)
_NOTICE_RE = re.compile(
    r"(?P<notice>(?:sender|postmaster) (?:non-delivery|delay|delivery status|success)) "
    r"notification: (?P<child>\S+)$"
)
_LOOP_PREFIX = "mail forwarding loop for "
LOOP_MARKER = "(" + _LOOP_PREFIX

# The block scanner: finds, in a block of whole lines, the lines that may be
# of interest in one pass of the regex engine, anchored on the "]: " that
# ends the syslog tag. Lines that match none (most of a log) never reach
# Python code. The last group that matched names the kind. The common,
# well-formed cases are handled on the spot; anything else is handed to
# Parser.parse_known, so both paths judge a line the same way.
SCAN_RE = re.compile(
    r"\]: *(?P<qid>[0-9A-Za-z]{6,38}+): (?:"
    rf"from=<(?P<sender>{ADDR})>, size=\d+, nrcpt=(?P<from>\d+)"
    r"|(?P<to>to=<)|(?P<removed>removed)$|(?P<other>from=<|(?:sender|postmaster) )"
    r"|(?P<origin>client=|uid=))",
    re.MULTILINE,
)
# A block holding either of these may carry rate-limit reports, which the
# scanner does not look for: such a block is parsed line by line.
LOSS_MARKERS = ("rate-limiting", "Suppressed ")
LOSS_LINE_RE = re.compile(r"^[^\n]*(?:rate-limit|Suppressed )[^\n]*$", re.MULTILINE)

# rsyslog, old and new: "imuxsock lost 423 messages from pid 1234 due to
# rate-limiting", "imuxsock[pid: 51, name: /usr/sbin/qmgr]: 4880 messages lost
# due to rate-limiting (20000 allowed within 300 seconds)", "imjournal: 236
# messages lost due to rate-limiting", "imuxsock[pid 29156]: begin to drop
# messages due to rate-limiting". journald: "Suppressed 917 messages from
# postfix@-.service".
_RSYSLOG_LOST_RE = re.compile(
    r"(?:lost (\d+) messages from pid \d+|(\d+) messages lost) due to rate-limiting"
)
_RSYSLOG_BEGIN_RE = re.compile(r"begins? to drop messages .*due to rate-limiting")
_JOURNALD_RE = re.compile(r"Suppressed (\d+) messages from ")
# Both daemons print the count as an unsigned int (rsyslog "%u messages lost",
# journald "Suppressed %u messages"): a larger number is not a count they wrote.
MAX_REPORTED_LOSS = 2**32 - 1

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    )
}

_TS_CACHE_MAX = 4096


def transport_of(program: str) -> tuple[str, str]:
    """``(transport, agent)`` for a syslog identifier.

    ``postfix/smtp`` -> (smtp, smtp); ``postfix/relay/smtp`` -> (relay, smtp);
    ``postfix-out/smtp`` -> (smtp, smtp): multi-instance ``syslog_name`` names
    the instance, not the service.
    """
    parts = program.split("/")
    agent = parts[-1]
    transport = parts[-2] if len(parts) >= 3 else agent
    return transport, agent


def split_relay(relay: str) -> tuple[str, str, int]:
    """``host[ip]:port`` -> (host, ip, port); ``local``/``none`` -> (relay, "", 0)."""
    lb = relay.find("[")
    if lb < 0:
        return relay, "", 0
    rb = relay.rfind("]")
    if rb < lb:
        return relay, "", 0
    port = 0
    tail = relay[rb + 1 :]
    if tail.startswith(":") and tail[1:].isdigit():
        port = int(tail[1:])
    return relay[:lb], relay[lb + 1 : rb], port


def _lost(digits: str) -> int:
    """A rate-limit report's count of lost lines; 0 (not said) if no daemon could have
    written it: anyone can log a fake report, and a sum of 10^26 lines helps no one
    (nor an int() of 5000 digits, which raises)."""
    if len(digits) > 10:
        return 0
    n = int(digits)
    return n if n <= MAX_REPORTED_LOSS else 0


@dataclass(slots=True)
class ParseStats:
    """What the parser saw. ``unparsed_samples`` keeps the last few offenders;
    ``unreadable``: Postfix-looking lines whose header no format reads (samples:
    ``(reason, line)``)."""

    lines: int = 0
    unparsed: int = 0
    unparsed_samples: deque[str] = field(default_factory=lambda: deque(maxlen=10))
    unreadable: int = 0
    unreadable_samples: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=10))


class Parser:
    """Turns lines into events.

    ``tz`` is the zone of year-less classic timestamps (the host's, unless
    configured). ``reference`` anchors the year of classic timestamps: the
    first line is taken to be no later than ``reference`` (for a file: its
    modification time), and a month that jumps back by more than half a year
    starts a new year (Dec 31 -> Jan 1). A zone-less time in the hour a DST
    fall-back repeats is read as the pass nearer the time read before it, so
    the second pass is not taken for the first (an hour back in time).
    """

    def __init__(self, *, reference: datetime, tz: tzinfo = UTC) -> None:
        self.tz = tz
        self.reference = reference
        self.stats = ParseStats()
        self._year: int | None = None
        self._month = 0
        self._ts_cache: dict[str, int] = {}  # timestamp text -> microseconds
        self.cached_time = self._ts_cache.get  # for the hot loop; the dict is only ever cleared
        self._minute_cache: dict[str, int] = {}  # "Oct 16 17:52" -> the minute's start
        self._last: int | None = None  # the last time converted: which pass of a repeated hour
        self._original: str | None = None  # while a rewritten line is read: the line as it was

    # -- public -----------------------------------------------------------------

    def parse(self, line: str) -> AnyEvent | None:
        """Parse one line (without its newline). Never raises."""
        self.stats.lines += 1
        return self.parse_known(line)

    def parse_known(self, line: str) -> AnyEvent | None:
        """:meth:`parse` for a line already counted (found by :meth:`scan`)."""
        if not line:
            return None
        if line[0].isdigit():  # one test for the format, per line
            # RFC 3339: "2026-11-28T02:50:43.123456+00:00 host prog[pid]: msg"
            if line[10:11] != "T":
                return self._reheader(line, "unknown header format")
            ts_end = line.find(" ")
        else:
            # classic / maillog_file: "Oct 16 17:52:52[.123456] host ..."
            c15 = line[15:16]
            if c15 == " ":
                ts_end = 15
            elif c15 == ".":
                ts_end = line.find(" ", 15)
            else:
                return self._reheader(line, "unknown header format")
        if ts_end < 0:
            return self._reheader(line, "no host after the timestamp")
        host_end = line.find(" ", ts_end + 1)
        if host_end < 0:
            return self._reheader(line, "no program after the host")
        prog_end = line.find("[", host_end + 1, host_end + 64)
        if prog_end < 0:
            return self._no_pid(line, host_end)
        program = line[host_end + 1 : prog_end]
        if not program.startswith("postfix"):
            if program.startswith(("rsyslogd", "systemd-journal", "imuxsock")):
                return self._log_loss(line, ts_end, host_end, program)
            return None
        pid_end = line.find("]: ", prog_end)
        if pid_end < 0 or not line[prog_end + 1 : pid_end].isdigit():
            return self._reheader(line, "tag is not program[pid]:")
        msg_start = pid_end + 3
        if line[msg_start : msg_start + 1] == " ":  # column-aligned: "]:   QID: "
            msg_start = len(line) - len(line[msg_start:].lstrip(" "))
        qid_end = line.find(": ", msg_start, msg_start + 40)
        if qid_end < 0 or ":" in line[msg_start:qid_end]:
            return None
        body = line[qid_end + 2 :]
        head = body[:3]
        if head == "to=":
            if body[3:4] != "<":
                return None  # not Postfix's shape (sendmail logs to=user@domain)
            kind = 1
        elif head == "fro":
            if not body.startswith("from=<") or not program.endswith("qmgr"):
                return None
            kind = 2
        elif head == "rem":
            if body != "removed":
                return None
            kind = 3
        elif body.startswith(("client=", "uid=")) and program_logs_origin(
            program.rpartition("/")[2], body
        ):
            if QID_RE.fullmatch(line[msg_start:qid_end]) is None:
                return None  # NOQUEUE: not queued (yet), nothing to join
            kind = 5
        elif program.endswith("bounce") and " notification: " in body:
            kind = 4
        else:
            return None
        qid = line[msg_start:qid_end]
        if QID_RE.fullmatch(qid) is None:
            return self._unparsed(line)
        time = self._time(line[:ts_end])
        if time is None:
            return self._reheader(line, "timestamp not understood")
        host = line[ts_end + 1 : host_end]
        pid = int(line[prog_end + 1 : pid_end])
        return self._body(kind, body, time, host, program, pid, qid, line)

    def parse_record(
        self, time: int, host: str, program: str, pid: int, message: str
    ) -> AnyEvent | None:
        """Parse a journal record: the header fields are given, not text."""
        self.stats.lines += 1
        if not program.startswith("postfix"):
            if program.startswith(("rsyslogd", "systemd-journal")):
                return self._loss_event(message, time, host, program, pid)
            return None
        qid_end = message.find(": ", 0, 40)
        if qid_end < 0 or ":" in message[:qid_end]:
            return None
        body = message[qid_end + 2 :]
        if body.startswith("to=<"):
            kind = 1
        elif body.startswith("from=<") and program.endswith("qmgr"):
            kind = 2
        elif body == "removed":
            kind = 3
        elif body.startswith(("client=", "uid=")) and program_logs_origin(
            program.rpartition("/")[2], body
        ):
            if QID_RE.fullmatch(message[:qid_end]) is None:
                return None  # NOQUEUE: not queued (yet), nothing to join
            kind = 5
        elif program.endswith("bounce") and " notification: " in body:
            kind = 4
        else:
            return None
        qid = message[:qid_end]
        if QID_RE.fullmatch(qid) is None:
            return self._unparsed(f"{program}[{pid}]: {message}")
        return self._body(kind, body, time, host, program, pid, qid, message)

    def timestamp(self, ts: str) -> int | None:
        """Microseconds for a timestamp's text, as the scanner cuts it; None if malformed."""
        cached = self._ts_cache.get(ts)
        return cached if cached is not None else self._time(ts)

    # -- helpers ----------------------------------------------------------------

    def _body(
        self,
        kind: int,
        body: str,
        time: int,
        host: str,
        program: str,
        pid: int,
        qid: str,
        line: str,
    ) -> AnyEvent | None:
        if kind == 1:
            m = DELIVERY_RE.match(body)
            if m is None:
                return self._unparsed(line)
            to, orig, relay, dsn, status, detail = m.groups()
            dsn = dsn or ""
            transport, agent = transport_of(program)
            relay_host, relay_ip, relay_port = split_relay(relay)
            detail = (detail[:-1] if detail.endswith(")") else detail) if detail else ""
            if detail.startswith(_LOOP_PREFIX):
                return ForwardingLoop(
                    time, host, program, pid, qid, agent, transport, to, orig or "",
                    relay, relay_host, relay_ip, relay_port, dsn, status.lower(), detail,
                    detail[len(_LOOP_PREFIX) :],
                )  # fmt: skip
            return Delivery(
                time, host, program, pid, qid, agent, transport, to, orig or "",
                relay, relay_host, relay_ip, relay_port, dsn, status.lower(), detail,
            )  # fmt: skip
        if kind == 2:
            m = _SENDER_RE.match(body)
            if m is None:
                m = _EXPIRED_RE.match(body)
                if m is None:
                    return self._unparsed(line)
                return QueueSender(time, host, program, pid, qid, m[1], 0, 0)
            return QueueSender(
                time, host, program, pid, qid, m[1], int(m[2]), int(m[3])
            )  # fmt: skip
        if kind == 3:
            return Removed(time, host, program, pid, qid)
        if kind == 5:
            origin = parse_origin(body)
            if origin is None:
                return self._unparsed(line)
            return Submitted(time, host, program, pid, qid, origin)
        m = _NOTICE_RE.match(body)
        if m is None or QID_RE.fullmatch(m["child"]) is None:
            return self._unparsed(line)
        return BounceNotice(time, host, program, pid, qid, m["notice"], m["child"])

    def _unparsed(self, line: str) -> AnyEvent | None:
        self.stats.unparsed += 1
        self.stats.unparsed_samples.append((self._original or line)[:500])
        return None

    def _reheader(self, line: str, why: str) -> AnyEvent | None:
        """The fast path could not read the header: another format (rewritten and read
        again), or, for a Postfix-looking line, unreadable."""
        original = self._original
        if original is None:
            r = read_line(line)
            if r.line is not None and r.line is not line:
                self._original = line
                try:
                    return self.parse_known(r.line)
                finally:
                    self._original = None
            why = r.reason or why
        if looks_postfix(original or line):
            self.stats.unreadable += 1
            self.stats.unreadable_samples.append((why, (original or line)[:500]))
        return None

    def _no_pid(self, line: str, host_end: int) -> AnyEvent | None:
        # "rsyslogd: imuxsock lost ..." has no [pid]; Postfix always logs one.
        colon = line.find(": ", host_end + 1, host_end + 64)
        if colon < 0:
            return None
        program = line[host_end + 1 : colon]
        if program.startswith("postfix"):
            return self._reheader(line, "no [pid] after the program")
        if program.startswith(("rsyslogd", "systemd-journal")):
            ts_end = line.rfind(" ", 0, host_end)
            time = self._time(line[:ts_end])
            if time is None:
                return None
            host = line[ts_end + 1 : host_end]
            return self._loss_event(line[colon + 2 :], time, host, program, 0)
        return None

    def _log_loss(self, line: str, ts_end: int, host_end: int, program: str) -> AnyEvent | None:
        if "rate-limit" not in line and "Suppressed" not in line:
            return None
        time = self._time(line[:ts_end])
        if time is None:
            return None
        return self._loss_event(line[host_end:], time, line[ts_end + 1 : host_end], program, 0)

    @staticmethod
    def _loss_event(msg: str, time: int, host: str, program: str, pid: int) -> LogLoss | None:
        m = _RSYSLOG_LOST_RE.search(msg)
        if m is not None:
            return LogLoss(time, host, program, pid, "", _lost(m[1] or m[2]), "rsyslog")
        if _RSYSLOG_BEGIN_RE.search(msg) is not None:
            return LogLoss(time, host, program, pid, "", 0, "rsyslog")
        m = _JOURNALD_RE.search(msg)
        if m is not None:
            return LogLoss(time, host, program, pid, "", _lost(m[1]), "journald")
        return None

    def _time(self, ts: str) -> int | None:
        cached = self._ts_cache.get(ts)
        if cached is not None:
            return cached
        try:
            value, fixed = self._convert(ts)
        except (ValueError, KeyError, OverflowError, IndexError):
            return None
        self._last = value
        if fixed:  # not in a repeated hour: the text alone says the time
            if len(self._ts_cache) >= _TS_CACHE_MAX:
                self._ts_cache.clear()
                self._minute_cache.clear()
            self._ts_cache[ts] = value
        return value

    def _convert(self, ts: str) -> tuple[int, bool]:
        """Microseconds for ``ts``, and whether they follow from the text alone."""
        if ts[0].isdigit():
            if len(ts) < 19:  # a date alone is not a log line's time
                raise ValueError(ts)
            dt = datetime.fromisoformat(ts)
            if dt.tzinfo is not None:
                return micros(dt), True
            return self._local(dt.replace(tzinfo=self.tz))
        # "Oct 16 17:52:52" / "Oct 06 17:52:52.123456"
        if ts[9] != ":" or ts[12] != ":" or not (ts[10:12] + ts[13:15]).isdigit():
            raise ValueError(ts)
        micro = 0
        if len(ts) > 15:
            if ts[15] != "." or not ts[16:].isdigit():
                raise ValueError(ts)
            micro = int((ts[16:] + "000000")[:6])
        seconds = int(ts[13:15]) * 1_000_000 + micro
        minute_key = ts[:12]
        base = self._minute_cache.get(minute_key)
        if base is not None:
            return base + seconds, True
        if ts[3] != " " or ts[6] != " " or not ts[7:9].isdigit():
            raise ValueError(ts)
        month = _MONTHS[ts[0:3]]
        day = int(ts[4:6])
        year = self._infer_year(month)
        minute = datetime(year, month, day, int(ts[7:9]), int(ts[10:12]), tzinfo=self.tz)
        base, fixed = self._local(minute, seconds)
        if fixed:
            self._minute_cache[minute_key] = base
        return base + seconds, fixed

    def _local(self, wall: datetime, later: int = 0) -> tuple[int, bool]:
        """A wall time of a zone-less line (``fold`` 0, in :attr:`tz`) ->
        ``(microseconds, unambiguous)``.

        In the hour a fall-back repeats, the wall time names two instants an
        offset change apart; the log is in the pass nearer the last time read
        (``later``: microseconds the caller will add; halfway: the later). A time in a
        spring-forward gap is read with the offset from before the gap.
        """
        first = micros(wall)
        second = micros(wall.replace(fold=1))
        if second <= first:  # one instant (or a gap, where fold=1 goes back)
            return first, True
        last = self._last
        if last is not None and abs(second + later - last) <= abs(first + later - last):
            return second, False
        return first, False

    def _infer_year(self, month: int) -> int:
        if self._year is None:
            ref = self.reference.astimezone(self.tz)
            self._year = ref.year - 1 if month > ref.month else ref.year
        elif month < self._month - 6:
            self._year += 1
            self._ts_cache.clear()
            self._minute_cache.clear()
        elif month > self._month + 6:
            # a straggler from before the new year: not a new year itself
            return self._year - 1
        self._month = month
        return self._year
