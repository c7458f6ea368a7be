#!/usr/bin/env python3
"""Deterministic Postfix mail-log generator: realistic traffic, and the seed incident.

Scenarios
---------
``mixed``
    The traffic of a Postfix 3.x mail server (``mx1.example.com``): inbound mail
    through an amavis content filter (``127.0.0.1:10024`` out, re-injected by a
    second smtpd on ``127.0.0.1:10025``) to dovecot LMTP, virtual, local and pipe
    delivery; authenticated submission (``postfix/submission/smtpd``) relayed out
    by ``postfix/smtp`` to IPv4 and IPv6 MX hosts, with deferrals, retries, hard
    bounces (``bounce`` notices to the local sender), delay warnings; a relay
    domain served by ``postfix/relay/smtp``; ``.forward`` forwarding; ``pickup``
    mail from cron; rejected spam (``NOQUEUE: reject``), SASL guessing, port
    scans; ``anvil``/``scache`` statistics; and about 10% lines of other programs
    (CRON, sshd, kernel, dovecot, systemd, amavis, opendkim). A third of the
    queue IDs are long (``enable_long_queue_ids``), the rest short hex IDs, some
    of which are reused after ``removed``. A few legitimate null-sender bounces
    per hour go out by smtp (backscatter from the relay domain). In the middle
    (at half the requested line count) sits one storm shaped like the seed
    incident: fetchmail feeds list mail into a local forwarding loop and every
    bounce notice leaves by smtp, about 5 per second for about 4 minutes.

``incident``
    The seed incident (``shared/seed/000_91707d3e5a9b400b.txt``, a Japanese
    post-mortem of 2011-10-16) in that log's own shapes: Postfix 2.7, classic
    year-less syslog, JST, short queue IDs, Japanese fetchmail messages, the
    addresses replaced by example domains. Procmail deliveries from 17:45;
    fetchmail[5447] at 17:50:06; fetchmail[5481] from 17:52:32 feeds the loop:
    exactly 1000 bounce notices relayed (``status=sent``) 17:52:52-17:55:59, split
    by destination as in the seed's table, some notices SASL-deferred (535) from
    17:53:51 and all of them after 17:56 (the loop slows to 0.2/s there, an
    invention that keeps the file small); SIGINT at 18:00:27; deferred-queue runs
    at 18:03:01 and 18:08:01 meet ``postfix/error`` (``mail transport
    unavailable``; the first line is the seed's, ``delay=550``); reload at
    18:29:35; ``postsuper`` at 18:41:31. fetchmail's per-message "reading
    message" lines are sampled (every 150th), not all written. This is what
    ``watcher/data/demo-incident.log`` holds. See the ``INCIDENT_*`` constants.

Formats (``--format``)
    ``classic``  ``Oct  6 17:52:52 mx1 postfix/smtp[123]: ...`` (rsyslog
    traditional: day space-padded, no year, no zone).
    ``maillog``  Postfix's own ``maillog_file`` written by postlogd
    (``%b %d %H:%M:%S``: day zero-padded). postlogd only ever sees Postfix
    programs, so this format carries no CRON/sshd/kernel/... lines.
    ``rfc3339``  ``2026-10-16T17:52:52.123456+00:00 mx1 ...`` (Debian 12 rsyslog).
    Local time is the UTC offset of ``--start`` (default ``+00:00``).

Determinism: every random choice comes from one ``random.Random(seed)`` through
its ``random()`` method only (stable across Python versions), no set or hash
order is ever iterated, and times are integer microseconds. The same arguments
give byte-identical output.

Usage::

    python benchmarks/genlog.py --scenario mixed --lines 1000000 --seed 1 -o mixed.log
    python benchmarks/genlog.py --scenario mixed --lines 5000 --format rfc3339 -o -
    python benchmarks/genlog.py --scenario incident -o watcher/data/demo-incident.log
"""

from __future__ import annotations

import argparse
import base64
import functools
import heapq
import itertools
import math
import os
import random
import sys
import time
from bisect import bisect
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Generic, TextIO, TypeVar

# =============================================================================
# The incident: every constant below comes from the seed post-mortem
# (shared/seed/000_91707d3e5a9b400b.txt). Local time is JST; the log is classic
# year-less syslog; the bounce message-ids carry the UTC time
# ("20111016085252.QID@host" for 17:52:52).
# =============================================================================
INCIDENT_SEED = 20111016
INCIDENT_DATE = (2011, 10, 16)  # "※実際は10/16のネタです", message-id 20111016...
INCIDENT_UTC_OFFSET_S = 9 * 3600  # JST: 17:52:52 local = 08:52:52 UTC in the message-id
INCIDENT_HOST = "mailhub"  # seed host "ibm-amddebian"
INCIDENT_FQDN = "mailhub.example.jp"  # seed "ibm-amddebian.labunix.net"
INCIDENT_LOOP_USER = "listuser@localhost"  # seed "mail forwarding loop for labunix@localhost"
INCIDENT_POP_ACCOUNT = "listuser@pop.example.jp"  # seed "labunix@vmsqueeze.labunix.net"
INCIDENT_FETCHMAIL_TOTAL = 13283  # seed "(全部で 13283)"
INCIDENT_FETCHMAIL_NTH_AT_175452 = 2041  # seed "2041 番目のメッセージ" at 17:54:52
INCIDENT_TRAFFIC_START = "17:45:00"  # a little normal (procmail) traffic before the storm
INCIDENT_FETCHMAIL_FIRST = ("17:50:06", 5447)  # seed: fetchmail[5447] cert warning
INCIDENT_FETCHMAIL_STORM = ("17:52:32", 5481)  # seed: fetchmail[5481], the run that looped
INCIDENT_SMTPD_PID = 5483  # seed: postfix/smtpd[5483] client=localhost[127.0.0.1]
INCIDENT_QMGR_PID = 4220  # seed: postfix/qmgr[4220]
INCIDENT_MASTER_PID = 4208  # seed: postfix/master[4208]
INCIDENT_FIRST_PIDS = {  # seed pids of the first looped message (17:52:52)
    "postfix/cleanup": (5487, 5493),
    "postfix/local": (5488,),
    "postfix/bounce": (5490,),
    "postfix/smtp": (5494,),
}
INCIDENT_PICKUP_PID = 4231
INCIDENT_ANVIL_PID = 5449
# (local time, pid) sightings in the seed; other pids are interpolated between them
INCIDENT_PID_SIGHTINGS = (
    ("17:45:00", 5360),
    ("17:50:06", 5447),
    ("17:52:32", 5481),
    ("17:54:52", 5635),
    ("17:55:38", 5685),
    ("18:01:26", 6072),
    ("18:03:01", 6078),
    ("18:41:31", 7293),
)
INCIDENT_FIRST_SENT = "17:52:52"  # seed: first MAILER-DAEMON sent (the 2XXXXXXXXX grep)
INCIDENT_LAST_SENT = "17:55:59"  # seed: status=sent only in minutes 17:52..17:55
INCIDENT_FIRST_SASL_DEFER = "17:53:51"  # = 18:03:01 minus the seed's "delay=550"
INCIDENT_SASL_DEFERRED_IN_WINDOW = 20  # seed: some notices deferred (SASL 535) among the sent
INCIDENT_LATE_LOOP_PER_S = 0.2  # after 17:56 the loop goes on, every notice SASL-deferred
INCIDENT_FETCHMAIL_SIGINT = "18:00:27"  # seed: fetchmail[5481] "シグナル 2 で終了しました。"
INCIDENT_ANVIL_STATS = "18:00:07"  # anvil_status_update_time (600 s) after 17:50:07
INCIDENT_FETCHMAIL_RERUN = ("18:01:26", 6072)  # seed: cert warning; access/transport changed
INCIDENT_QUEUE_SCANS = ("18:03:01", "18:08:01")  # deferred queue runs (queue_run_delay 300s)
INCIDENT_ERROR_PID = 6078  # seed: postfix/error[6078] ... (mail transport unavailable)
INCIDENT_RELOAD = "18:29:35"  # seed: postfix/master[4208]: reload configuration
INCIDENT_POSTSUPER = ("18:41:31", 7293)  # seed: postfix/postsuper[7293]: Deleted: N messages
INCIDENT_TRAFFIC_END = "18:41:00"
INCIDENT_RELAY = "smtp.example.net[192.0.2.25]:587"  # seed smtp.mail.yahoo.co.jp[...]:587
INCIDENT_RELAY_SERVER = "smtp.example.net[192.0.2.25]"
INCIDENT_RELAY_CLOCK_SKEW_S = 101  # seed "250 ok 1318755071" at 08:52:52 UTC: 101 s behind
# Seed table "送信先アドレス/送信数": bounces sent per destination domain (total 1000).
# Each real list domain is replaced by an example name; the counts are the seed's.
INCIDENT_BOUNCES_BY_DOMAIN: dict[str, int] = {
    "groups.example.com": 787,  # googlegroups.com
    "lists.example.org": 155,  # lists.debian.org
    "list.example.net": 15,  # list.cr.yp.to (qmail list)
    "gnu.example.org": 9,  # gnu.org (Grub-devel)
    "alerts.example.com": 7,  # alerts.bounces.google.com
    "samba.example.jp": 7,  # samba.gr.jp
    "ml.example.jp": 6,  # "その他私の管理するメーリングリスト"
    "mysql.example.jp": 5,  # mysql.gr.jp
    "listserv.example.jp": 3,  # listserv.linux.or.jp
    "news.example.jp": 2,  # cm.impress.co.jp
    "lists.example.net": 2,  # lists.linux-foundation.org
    "mag.example.jp": 1,  # rcv26.smp.ne.jp
    "reply.example.jp": 1,  # reply.yahoo.co.jp
}
INCIDENT_BOUNCES_SENT = sum(INCIDENT_BOUNCES_BY_DOMAIN.values())  # 1000, as in the seed
# the seed's two failure texts (17:55:38 smtp, 18:03:01 error)
SASL_535 = (
    f"dsn=4.0.0, status=deferred (SASL authentication failed; server {INCIDENT_RELAY_SERVER} "
    "said: 535 authorization failed (#5.7.0))"
)
UNAVAILABLE = "dsn=4.3.0, status=deferred (mail transport unavailable)"

# =============================================================================
# The mixed scenario
# =============================================================================
DEFAULT_START = "2026-10-16T00:00:00+00:00"
MIXED_HOST = "mx1"
MIXED_FQDN = "mx1.example.com"
MIXED_ARRIVALS_PER_S = 1.4  # mean arrivals (sessions, jobs, noise events) per second
MIXED_LONG_QID_FRACTION = 1 / 3  # share of queue files named with enable_long_queue_ids
MIXED_SHORT_QID_REUSE = 0.004  # share of new short IDs that reuse one removed >= 60 s ago
MIXED_BACKSCATTER_PER_H = 3.0  # legitimate null-sender bounces relayed out by smtp
STORM_PER_S = 5.0  # loop bounces per second during the embedded storm (seed: ~5/s)
STORM_SECONDS = 240  # storm length (seed: 17:52:52-17:55:59, about 4 minutes)

US = 1_000_000
T = TypeVar("T")
Step = tuple[int, str]  # (time in microseconds since the epoch, "program[pid]: text")
Flow = Iterator[Step]

# ----------------------------------------------------------------------------- text tables
# fmt: off
LOCAL_USERS = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    "mallory", "niaj", "oscar", "peggy", "rupert", "sybil", "trent", "victor", "walter",
    "yuki", "kenji", "hanako",
)
REMOTE_USERS = (
    "info", "sales", "support", "noreply", "newsletter", "jdoe", "tanaka", "suzuki", "sato",
    "mike", "lisa", "hr", "billing", "orders", "m.yamada", "events",
)
# fmt: on
# (domain, MX host, MX address): example domains, RFC 5737 / RFC 3849 addresses.
REMOTE_SITES = (
    ("example.net", "mx1.example.net", "198.51.100.25"),
    ("example.org", "mx.example.org", "203.0.113.25"),
    ("example.jp", "mx.example.jp", "192.0.2.125"),
    ("mail.example.net", "mx2.example.net", "2001:db8::25"),
    ("corp.example.org", "smtp-in.corp.example.org", "2001:db8:100::19"),
    ("shop.example.jp", "mx01.shop.example.jp", "198.51.100.140"),
    ("isp.example.net", "mx-in.isp.example.net", "203.0.113.140"),
    ("univ.example.jp", "mx.univ.example.jp", "2001:db8:3e::2"),
)
INBOUND_CLIENTS = (
    ("mail-out1.example.net", "198.51.100.31"),
    ("mail-out2.example.net", "198.51.100.32"),
    ("out.example.org", "203.0.113.44"),
    ("smtp.example.jp", "192.0.2.77"),
    ("mta-v6.example.net", "2001:db8:5::31"),
    ("relay.corp.example.org", "2001:db8:100::26"),
    ("mx01.shop.example.jp", "198.51.100.140"),
    ("bulk3.isp.example.net", "203.0.113.151"),
)
LIST_SITES = {  # list domains of the storm: (MX host, address)
    "groups.example.com": ("mx.groups.example.com", "2001:db8:4860::1b"),
    "lists.example.org": ("bendel.lists.example.org", "203.0.113.190"),
    "list.example.net": ("list.example.net", "198.51.100.180"),
    "gnu.example.org": ("eggs.gnu.example.org", "203.0.113.209"),
    "alerts.example.com": ("mx.groups.example.com", "2001:db8:4860::1b"),
    "samba.example.jp": ("mail.samba.example.jp", "192.0.2.150"),
    "ml.example.jp": ("mx.example.jp", "192.0.2.125"),
    "mysql.example.jp": ("mail.mysql.example.jp", "192.0.2.151"),
    "listserv.example.jp": ("listserv.example.jp", "192.0.2.152"),
    "news.example.jp": ("mx.news.example.jp", "198.51.100.161"),
    "lists.example.net": ("mail.lists.example.net", "2001:db8:1f::40"),
    "mag.example.jp": ("rcv.mag.example.jp", "198.51.100.162"),
    "reply.example.jp": ("mx.reply.example.jp", "198.51.100.163"),
}
LIST_NAMES = ("users", "devel", "announce", "help", "discuss", "i18n", "security", "tips")
HOSTED_DOMAIN = "hosted.example.org"  # virtual(8) maildirs
LISTS_DOMAIN = "lists.example.com"  # mailman via pipe(8)
RELAY_DOMAIN = "branch.example.com"  # relay_domains -> postfix/relay/smtp
RELAY_NEXTHOP = ("mail.branch.example.com", "192.0.2.40")
TLS_IN = (
    "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 "
    "server-signature RSA-PSS (2048 bits) server-digest SHA256"
)
TLS_OUT = (
    "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 "
    "server-signature ECDSA (P-256) server-digest SHA256"
)
PROCMAIL = 'procmail -a "$EXTENSION"'  # Debian's default mailbox_command
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
SAFE_CHARS = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz"  # Postfix safe_ultostr


# ============================================================================= helpers
class Rng:
    """All randomness, from ``random.Random(seed).random()`` only (stable across versions)."""

    __slots__ = ("random",)

    def __init__(self, seed: int) -> None:
        self.random: Callable[[], float] = random.Random(seed).random

    def chance(self, p: float) -> bool:
        return self.random() < p

    def randint(self, lo: int, hi: int) -> int:
        """Uniform integer in ``[lo, hi]``."""
        return lo + int(self.random() * (hi - lo + 1))

    def ms(self, lo: float, hi: float) -> int:
        """Uniform duration between ``lo`` and ``hi`` milliseconds, in microseconds."""
        return int((lo + (hi - lo) * self.random()) * 1000)

    def expo(self, mean_s: float) -> int:
        """Exponential gap with the given mean (seconds), in microseconds (at least 1)."""
        return 1 + int(-mean_s * math.log(1.0 - self.random()) * US)

    def pick(self, seq: Sequence[T]) -> T:
        return seq[int(self.random() * len(seq))]

    def token(self, n: int, alphabet: str = ALNUM) -> str:
        k = len(alphabet)
        r = self.random
        return "".join([alphabet[int(r() * k)] for _ in range(n)])

    def b64(self, n: int) -> str:
        """``n`` characters of base64 (``A-Za-z0-9+/``), 8 per draw."""
        r = self.random
        raw = b"".join([int(r() * 2**48).to_bytes(6, "big") for _ in range((n + 7) // 8)])
        return base64.b64encode(raw).decode()[:n]

    def hexs(self, n: int) -> str:
        """``n`` random lower-case hex digits (12 per draw: a double has 53 bits)."""
        out = ""
        while len(out) < n:
            k = min(12, n - len(out))
            out += format(int(self.random() * 16**k), f"0{k}x")
        return out


class Weighted(Generic[T]):
    """A fixed weighted choice (cumulative table + bisect)."""

    __slots__ = ("cum", "items")

    def __init__(self, table: Sequence[tuple[T, float]]) -> None:
        total = sum(w for _, w in table)
        acc = 0.0
        self.cum: list[float] = []
        self.items: list[T] = []
        for item, w in table:
            acc += w / total
            self.cum.append(acc)
            self.items.append(item)
        self.cum[-1] = 1.0

    def __call__(self, rng: Rng) -> T:
        return self.items[min(bisect(self.cum, rng.random()), len(self.items) - 1)]


_SMALL = ["0"] + [f"0.{c:02d}".rstrip("0") for c in range(1, 100)] + ["1"]


def fd(us: int) -> str:
    """Format a delay as Postfix's log_adhoc does (format_tv: 2 significant digits,
    10 ms resolution, integral seconds from 10 s on): 0, 0.04, 0.3, 1.2, 550."""
    if us < 995_000:
        return _SMALL[(us + 5_000) // 10_000]
    if us < 10 * US:
        i, f = divmod((us + 50_000) // 100_000, 10)
        return str(i) if f == 0 else f"{i}.{f}"
    return str(us // US)


def _safe(val: int, base: int, pad: int) -> str:
    out: list[str] = []
    while val:
        val, d = divmod(val, base)
        out.append(SAFE_CHARS[d])
    s = "".join(reversed(out))
    return s.rjust(pad, "0") if len(s) < pad else s


_sec_cache = [-1, ""]


def long_qid(t_us: int, inode: int) -> str:
    """``enable_long_queue_ids`` name: seconds (base 52, 6+ chars), microseconds (base 52,
    4 chars), ``z``, inode (base 51): e.g. ``3Pt2mN2VXxznjll``."""
    sec, usec = divmod(t_us, US)
    if _sec_cache[0] != sec:
        _sec_cache[0], _sec_cache[1] = sec, _safe(sec, 52, 6)
    u1, u0 = divmod(usec, 52)
    u2, u1 = divmod(u1, 52)
    u3, u2 = divmod(u2, 52)
    c = SAFE_CHARS
    return f"{_sec_cache[1]}{c[u3]}{c[u2]}{c[u1]}{c[u0]}z{_safe(inode, 51, 1)}"


def short_qid(t_us: int, inode: int) -> str:
    """Classic name: microseconds (5 hex digits) then the inode number in hex."""
    return f"{t_us % US:05X}{inode:X}"


def is_long_qid(qid: str) -> bool:
    return len(qid) >= 12


def res(dsn: str, status: str, text: str) -> str:
    """The outcome fields of a delivery line: ``dsn=2.0.0, status=sent (250 Ok)``."""
    return f"dsn={dsn}, status={status} ({text})"


def dline(
    prog: str,
    qid: str,
    to: str,
    relay: str,
    delays: tuple[int, int, int, int],
    result: str,
    orig_to: str = "",
    conn_use: int = 1,
) -> str:
    """A delivery-agent status line, field for field as log_adhoc() writes it; ``delays``
    are the a/b/c/d stages in microseconds, ``result`` comes from :func:`res`."""
    a, b, c, d = delays
    head = f"{prog}: {qid}: to=<{to}>"
    if orig_to:
        head += f", orig_to=<{orig_to}>"
    head += f", relay={relay}"
    if conn_use > 1:
        head += f", conn_use={conn_use}"
    return f"{head}, delay={fd(a + b + c + d)}, delays={fd(a)}/{fd(b)}/{fd(c)}/{fd(d)}, {result}"


@functools.lru_cache(maxsize=256)
def disconnect_stats(tls: int, auth: int, mail: int, rcpt: str, data: str, quit_: bool) -> str:
    """smtpd's per-session command counts (Postfix >= 3.0): ``ehlo=1 mail=1 ... commands=5``."""
    parts = [f"ehlo={1 + tls}"]
    n = 1 + tls
    if tls:
        parts.append("starttls=1")
        n += 1
    if auth:
        parts.append("auth=1")
        n += 1
    if mail:
        parts.append(f"mail={mail}")
        n += mail
    if rcpt:
        parts.append(f"rcpt={rcpt}")
        n += int(rcpt.split("/")[0])
    if data:
        parts.append(f"data={data}")
        n += int(data.split("/")[0])
    if quit_:
        parts.append("quit=1")
        n += 1
    tot = n
    for p in (rcpt, data):
        if "/" in p:
            tot += int(p.split("/")[1]) - int(p.split("/")[0])
    parts.append(f"commands={n}" if tot == n else f"commands={n}/{tot}")
    return " ".join(parts)


_stamp_cache: dict[int, str] = {}


def utc_stamp(t_us: int) -> str:
    """``YYYYmmddHHMMSS`` in UTC, as in Postfix-made message-ids."""
    sec = t_us // US
    s = _stamp_cache.get(sec)
    if s is None:
        if len(_stamp_cache) > 4096:
            _stamp_cache.clear()
        s = _stamp_cache[sec] = time.strftime("%Y%m%d%H%M%S", time.gmtime(sec))
    return s


# ============================================================================= simulation core
class Scheduler:
    """Merges flows (generators of time-ordered steps) into one time-ordered stream.

    A flow yields ``(t, text)`` with non-decreasing ``t``; an empty text is a silent
    wake-up. Flows may spawn other flows. A step earlier than the stream's current
    time is emitted at the current time, so the output never goes back in time.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, str, Flow]] = []
        self._seq = itertools.count()
        self.now = 0

    def spawn(self, flow: Flow) -> None:
        step = next(flow, None)
        if step is not None:
            t = step[0] if step[0] >= self.now else self.now
            heapq.heappush(self._heap, (t, next(self._seq), step[1], flow))

    def run(self) -> Iterator[Step]:
        heap = self._heap
        seq = self._seq
        pop = heapq.heappop
        replace = heapq.heapreplace
        while heap:
            # The head stays the head while its flow runs: anything spawned meanwhile
            # starts no earlier (clamped to now) and has a later sequence number.
            t, _, text, flow = heap[0]
            self.now = t
            step = next(flow, None)
            if step is None:
                pop(heap)
            else:
                nt = step[0]
                replace(heap, (nt if nt >= t else t, next(seq), step[1], flow))
            if text:
                yield t, text


class Pids:
    """Process IDs that grow with time along ``anchors`` ((t_us, pid) points, then
    ``per_s`` per second), never repeating and never one of ``avoid``."""

    def __init__(
        self, rng: Rng, anchors: Sequence[tuple[int, int]], per_s: float, avoid: Sequence[int] = ()
    ) -> None:
        self.rng = rng
        self.anchors = sorted(anchors)
        self.per_us = per_s / US
        self.last = self.anchors[0][1]
        self.avoid = frozenset(avoid)

    def floor(self, t: int) -> int:
        pts = self.anchors
        if t <= pts[0][0]:
            return pts[0][1]
        for (t0, p0), (t1, p1) in itertools.pairwise(pts):
            if t < t1:
                return p0 + (p1 - p0) * (t - t0) // (t1 - t0)
        t_last, p_last = pts[-1]
        return p_last + int((t - t_last) * self.per_us)

    def new(self, t: int) -> int:
        pid = max(self.last + 1 + int(self.rng.random() * 3), self.floor(t))
        while pid in self.avoid:
            pid += 1
        self.last = pid
        return pid


class Proc:
    """The processes of one Postfix service: a few live at a time, each replaced after
    ``max_use`` requests or ``max_idle`` seconds idle (master.cf / main.cf defaults)."""

    __slots__ = ("max_idle", "max_use", "pids", "prog", "slots", "width")

    def __init__(self, prog: str, pids: Pids, width: int, max_use: int = 100, max_idle: int = 100):
        self.prog = prog
        self.pids = pids
        self.width = width
        self.max_use = max_use
        self.max_idle = max_idle * US
        self.slots: list[list[int]] = []  # [pid, uses, last use, busy until]

    def _fresh(self, slot: list[int], t: int) -> None:
        if slot[1] >= self.max_use or t - slot[2] > self.max_idle:
            slot[0] = self.pids.new(t)
            slot[1] = 0
        slot[1] += 1
        slot[2] = t

    def tag(self, t: int) -> str:
        """``prog[pid]`` of any live process of the service (request-per-request daemons)."""
        slots = self.slots
        if len(slots) < self.width:
            slots.append([self.pids.new(t), 0, t, 0])
            slot = slots[-1]
        else:
            slot = slots[int(self.pids.rng.random() * self.width)]
        self._fresh(slot, t)
        return f"{self.prog}[{slot[0]}]"

    def session(self, t: int, until: int) -> str:
        """``prog[pid]`` of a process that serves one connection from ``t`` to ``until``."""
        for slot in self.slots:
            if slot[3] <= t:
                break
        else:
            slot = [self.pids.new(t), 0, t, 0]
            self.slots.append(slot)
        self._fresh(slot, t)
        slot[3] = until
        return f"{self.prog}[{slot[0]}]"

    def seed(self, pids: Sequence[int], t: int) -> None:
        self.slots = [[pid, 0, t, 0] for pid in pids]


class Qids:
    """Queue IDs: long or short, short ones sometimes reused after ``removed``."""

    def __init__(self, rng: Rng, long_fraction: float, reuse: float) -> None:
        self.rng = rng
        self.long_fraction = long_fraction
        self.reuse = reuse
        self._freed: list[tuple[int, str]] = []  # (removed at, short qid), a heap
        self._pool: deque[str] = deque(maxlen=2000)

    def _inode(self) -> int:
        return 0x20000 + int(self.rng.random() * 0x1E0000)

    def new(self, t: int) -> str:
        r = self.rng.random
        if r() < self.long_fraction:
            return long_qid(t, self._inode())
        if self.reuse:
            freed = self._freed
            horizon = t - 60 * US
            while freed and freed[0][0] < horizon:
                self._pool.append(heapq.heappop(freed)[1])
            if self._pool and r() < self.reuse:
                return self._pool.popleft()
        return short_qid(t, self._inode())

    def removed(self, t: int, qid: str) -> None:
        if self.reuse and not is_long_qid(qid):
            heapq.heappush(self._freed, (t, qid))


class Conn:
    """One cached SMTP session: who holds it and how often it was used."""

    __slots__ = ("born", "last", "tag", "uses")

    def __init__(self) -> None:
        self.tag = ""
        self.uses = 0
        self.born = 0
        self.last = 0


class Conns:
    """Outbound SMTP connection reuse (scache): ``conn_use`` counts per cached session."""

    def __init__(self, rng: Rng, idle_s: float, max_age_s: float) -> None:
        self.rng = rng
        self.idle = int(idle_s * US)
        self.max_age = int(max_age_s * US)
        self._c: dict[str, list[Conn]] = {}

    def use(self, key: str, t: int, proc: Proc, width: int) -> tuple[str, int]:
        """Return (``prog[pid]``, ``conn_use``) for a delivery to ``key`` at ``t``."""
        slots = self._c.setdefault(key, [])
        i = int(self.rng.random() * width)
        if i >= len(slots):
            slots.append(Conn())
            i = len(slots) - 1
        c = slots[i]
        if c.uses == 0 or t - c.last > self.idle or t - c.born > self.max_age:
            c.tag = proc.tag(t)
            c.uses = 1
            c.born = t
        else:
            c.uses += 1
        c.last = t
        return c.tag, c.uses


FORMATS = ("classic", "maillog", "rfc3339")


def tz_suffix(offset_s: int) -> str:
    sign = "+" if offset_s >= 0 else "-"
    return f"{sign}{abs(offset_s) // 3600:02d}:{abs(offset_s) % 3600 // 60:02d}"


def second_prefix(fmt: str, sec: int, host: str, offset_s: int) -> str:
    """The part of a line's prefix that changes once a second.

    classic ``Oct  6 17:52:52 host `` / maillog ``Oct 06 17:52:52 host `` (complete), or
    rfc3339 ``2026-10-06T17:52:52`` (fraction, zone and host follow).
    """
    tm = time.gmtime(sec + offset_s)
    hms = f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}"
    if fmt == "rfc3339":
        return f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d}T{hms}"
    if fmt == "classic":
        return f"{MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} {hms} {host} "
    if fmt == "maillog":
        return f"{MONTHS[tm.tm_mon - 1]} {tm.tm_mday:02d} {hms} {host} "
    raise ValueError(f"unknown format {fmt!r}")


def ctime15(t_us: int, offset_s: int) -> str:
    """``Oct 16 17:52:33`` / ``Oct  6 ...`` as ``ctime()+4`` (anvil, scache)."""
    tm = time.gmtime(t_us // US + offset_s)
    return (
        f"{MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} {tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}"
    )


def write_steps(
    out: TextIO,
    steps: Iterator[Step],
    fmt: str,
    host: str,
    offset_s: int,
    *,
    limit: int = 0,
    trigger_at: int = 0,
    on_trigger: Callable[[int], None] | None = None,
) -> int:
    """Render steps as log lines into ``out``; return the number of lines written.

    ``limit`` (if > 0) stops after that many lines; ``on_trigger(t)`` runs once, right
    after line number ``trigger_at``. The ``maillog`` format keeps Postfix lines only.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    rfc = fmt == "rfc3339"
    postfix_only = fmt == "maillog"
    tail = f"{tz_suffix(offset_s)} {host} "
    buf: list[str] = []
    append = buf.append
    n = 0
    last_sec = -1
    pre = ""
    for t, text in steps:
        if postfix_only and not text.startswith("postfix"):
            continue
        sec = t // US
        if sec != last_sec:
            last_sec = sec
            pre = second_prefix(fmt, sec, host, offset_s)
        if rfc:
            append(f"{pre}.{t % US:06d}{tail}{text}\n")
        else:
            append(pre + text + "\n")
        n += 1
        if n == trigger_at and on_trigger is not None:
            on_trigger(t)
        if n == limit:
            break
        if len(buf) >= 8192:
            out.write("".join(buf))
            buf.clear()
    out.write("".join(buf))
    return n


# ============================================================================= mixed traffic
class Mixed:
    """A Postfix 3.x server's day(s), as discrete-event flows (one per SMTP session/job)."""

    def __init__(self, seed: int, start_us: int, offset_s: int) -> None:
        self.R = R = Rng(seed)
        self.start = start_us
        self.offset_s = offset_s
        self.sched = Scheduler()
        self.pids = pids = Pids(R, [(start_us, 2000 + R.randint(0, 2000))], 0.35)
        self.qids = Qids(R, MIXED_LONG_QID_FRACTION, MIXED_SHORT_QID_REUSE)
        self.conns = Conns(R, idle_s=2.0, max_age_s=300.0)
        self.master = pids.new(start_us)
        self.qmgr = f"postfix/qmgr[{pids.new(start_us)}]"
        self.p_smtpd = Proc("postfix/smtpd", pids, 0)
        self.p_sub = Proc("postfix/submission/smtpd", pids, 0)
        self.p_cleanup = Proc("postfix/cleanup", pids, 3)
        self.p_smtp = Proc("postfix/smtp", pids, 6)
        self.p_relay = Proc("postfix/relay/smtp", pids, 2)
        self.p_lmtp = Proc("postfix/lmtp", pids, 3)
        self.p_local = Proc("postfix/local", pids, 2)
        self.p_virtual = Proc("postfix/virtual", pids, 2)
        self.p_pipe = Proc("postfix/pipe", pids, 1)
        self.p_bounce = Proc("postfix/bounce", pids, 1)
        self.p_pickup = Proc("postfix/pickup", pids, 1, max_use=1000, max_idle=3600)
        self.p_error = Proc("postfix/error", pids, 1)
        self.amavis_pids = [pids.new(start_us) for _ in range(3)]
        self.amavis_n = [0, 0, 0]
        self.dovecot_lmtp = pids.new(start_us)
        self.kernel_boot_s = 86400 * 12 + R.randint(0, 86400)
        self.session_no = 100 + R.randint(0, 500)
        self.kind = Weighted(
            [
                (self.inbound, 32.0),
                (self.submission, 14.0),
                (self.relay_in, 4.0),
                (self.forward_in, 2.0),
                (self.pickup, 4.0),
                (self.reject, 16.0),
                (self.port_scan, 5.0),
                (self.sasl_guess, 5.0),
                (self.sshd, 3.0),
                (self.ufw, 2.5),
                (self.imap, 2.5),
            ]
        )

    # ------------------------------------------------------------------ small helpers
    def local_addr(self) -> str:
        R = self.R
        r = R.random()
        if r < 0.82:
            return f"{R.pick(LOCAL_USERS)}@example.com"
        if r < 0.93:
            return f"{R.pick(LOCAL_USERS)}@{HOSTED_DOMAIN}"
        if r < 0.97:
            return f"{R.pick(('announce', 'members', 'dev'))}@{LISTS_DOMAIN}"
        return "postmaster@example.com"

    def remote_addr(self) -> tuple[str, tuple[str, str, str]]:
        site = self.R.pick(REMOTE_SITES)
        return f"{self.R.pick(REMOTE_USERS)}@{site[0]}", site

    def mid(self, t: int, domain: str) -> str:
        R = self.R
        r = R.random()
        if r < 0.3:
            return f"CA{R.b64(24).replace('/', '_')}@mail.{domain}"
        if r < 0.6:
            return f"{utc_stamp(t)}.{R.hexs(8)}@{domain}"
        if r < 0.8:
            return f"{R.hexs(8)}-{R.hexs(4)}-{R.hexs(4)}-{R.hexs(4)}-{R.hexs(12)}@{domain}"
        return f"{R.hexs(12)}.{R.hexs(6)}@{domain}"

    def size(self) -> int:
        R = self.R
        return int(900 + math.exp(7.5 + 1.3 * (R.random() + R.random() + R.random() - 1.5)))

    def unknown_ip(self) -> str:
        R = self.R
        return f"{R.pick(('203.0.113', '198.51.100', '192.0.2'))}.{R.randint(1, 254)}"

    def removed(self, t: int, qid: str) -> Step:
        self.qids.removed(t, qid)
        return t, f"{self.qmgr}: {qid}: removed"

    def lmtp_sess(self) -> str:
        """A dovecot LMTP session id (22 chars of base64: 8 random bytes + pid/host part)."""
        raw = int(self.R.random() * 2**53).to_bytes(8, "big") + b"\x00\x00\xd0\x9e\xfc\x50\x12\x34"
        return base64.b64encode(raw).decode()[:22]

    # ------------------------------------------------------------------ building blocks
    def final_delivery(
        self, qid: str, t_arr: int, t_act: int, rcpts: Sequence[tuple[str, str]], mid: str
    ) -> tuple[list[Step], int]:
        """Deliver to local mailboxes: lmtp (dovecot), virtual, local, pipe (mailman).

        ``rcpts`` are (address, original address or ""). Returns steps and the end time.
        """
        R = self.R
        steps: list[Step] = []
        t = t_act
        a = t_act - t_arr
        for rcpt, orig in rcpts:
            domain = rcpt.rpartition("@")[2]
            b = R.ms(0.5, 12)
            c = 0
            if domain == "example.com":
                c, d = R.ms(0, 3), R.ms(8, 180)
                proc, relay = self.p_lmtp, f"{MIXED_FQDN}[private/dovecot-lmtp]"
                text = f"250 2.0.0 <{rcpt}> {self.lmtp_sess()} Saved"
                saved = f"msgid=<{mid}>: saved mail to INBOX"
                who = f"lmtp({rcpt})<{self.dovecot_lmtp}><{self.lmtp_sess()[:16]}>"
                steps.append((t + b + c + d - R.ms(0.3, 2), f"dovecot: {who}: {saved}"))
            elif domain == HOSTED_DOMAIN:
                d, proc, relay, text = (
                    R.ms(2, 60),
                    self.p_virtual,
                    "virtual",
                    "delivered to maildir",
                )
            elif domain == LISTS_DOMAIN:
                d, proc, relay = R.ms(150, 900), self.p_pipe, "mailman"
                text = "delivered via mailman service"
            else:  # local(8): aliases and system users
                d, proc, relay = R.ms(3, 90), self.p_local, "local"
                text = R.pick(("delivered to mailbox", f"delivered to command: {PROCMAIL}"))
            t += b + c + d
            line = dline(
                proc.tag(t), qid, rcpt, relay, (a, b, c, d), res("2.0.0", "sent", text), orig
            )
            steps.append((t, line))
        return steps, t

    def resolve_local(self, rcpt: str) -> tuple[str, str]:
        """Virtual alias: postmaster@example.com -> sysadmin@mx1.example.com (local)."""
        if rcpt.startswith("postmaster@"):
            return f"sysadmin@{MIXED_FQDN}", rcpt
        return rcpt, ""

    def notice(
        self,
        orig_qid: str,
        t: int,
        kind: str,
        to: str,
        size: int,
        deliver: str,
        site: tuple[str, str, str] | None = None,
    ) -> tuple[list[Step], int]:
        """A bounce(8) notice: cleanup, ``bounce`` line, qmgr ``from=<>``, delivery, removed.

        ``kind`` is ``sender non-delivery notification`` or ``sender delay notification``;
        ``deliver`` is "local" (back to our own user) or "smtp" (to a remote sender).
        """
        R = self.R
        nq = self.qids.new(t)
        steps: list[Step] = [
            (t, f"{self.p_cleanup.tag(t)}: {nq}: message-id=<{utc_stamp(t)}.{nq}@{MIXED_FQDN}>"),
        ]
        t1 = t + R.ms(0.3, 3)
        steps.append((t1, f"{self.p_bounce.tag(t1)}: {orig_qid}: {kind}: {nq}"))
        t2 = t1 + R.ms(0.5, 6)
        nsize = size + R.randint(1800, 2600)
        steps.append((t2, f"{self.qmgr}: {nq}: from=<>, size={nsize}, nrcpt=1 (queue active)"))
        if deliver == "smtp" and site is not None:
            more, t3 = self.smtp_out(nq, [to], site, t, t2, outcome="sent")
            steps.extend(more)
        else:
            more, t3 = self.final_delivery(
                nq, t, t2, [(to, "")], f"{utc_stamp(t)}.{nq}@{MIXED_FQDN}"
            )
            steps.extend(more)
        t4 = t3 + R.ms(0.2, 2)
        steps.append(self.removed(t4, nq))
        return steps, t4

    def smtp_out(
        self,
        qid: str,
        rcpts: Sequence[str],
        site: tuple[str, str, str],
        t_arr: int,
        t_act: int,
        outcome: str,
        proc: Proc | None = None,
        orig_to: str = "",
        width: int = 2,
    ) -> tuple[list[Step], int]:
        """One smtp(8) delivery attempt to ``site`` for ``rcpts``.

        ``outcome``: sent | timeout | greylist | v6unreach (then sent) | bounced.
        """
        R = self.R
        proc = proc or self.p_smtp
        _, mx, ip = site
        relay = f"{mx}[{ip}]:25"
        a = t_act - t_arr
        b = R.ms(0.5, 40)
        steps: list[Step] = []
        if outcome == "timeout":
            tag = proc.tag(t_act)
            c = 30 * US + R.ms(0, 40)
            t = t_act + b + c
            result = res("4.4.1", "deferred", f"connect to {relay}: Connection timed out")
            for rcpt in rcpts:
                steps.append((t, dline(tag, qid, rcpt, "none", (a, b, c, 0), result, orig_to)))
            return steps, t
        tag, use = self.conns.use(mx, t_act + b, proc, width)
        c = 0
        if outcome == "v6unreach" and ":" in ip:
            unreachable = f"{tag}: connect to {relay}: Network is unreachable"
            steps.append((t_act + b + R.ms(0.1, 1), unreachable))
            c, ip, use = R.ms(1, 5), "198.51.100.26", 1  # then the MX's IPv4 address
            relay = f"{mx}[{ip}]:25"
        c += R.ms(60, 700) if use == 1 else R.ms(0, 15)
        if use == 1 and R.chance(0.75):
            trust = R.pick(("Trusted", "Verified", "Untrusted", "Anonymous"))
            tls = f"{tag}: {trust} TLS connection established to {relay}: {TLS_OUT}"
            steps.append((t_act + b + c - R.ms(0, 2), tls))
        d = R.ms(40, 1100)
        t = t_act + b + c + d
        reply = self.smtp_reply(t)  # one transaction, one reply for every recipient
        for rcpt in rcpts:
            if outcome == "greylist":
                result = res(
                    "4.2.0",
                    "deferred",
                    f"host {mx}[{ip}] said: 450 4.2.0 <{rcpt}>: Recipient address rejected: "
                    "Greylisted, please try again later (in reply to RCPT TO command)",
                )
            elif outcome == "bounced":
                result = res(
                    "5.1.1",
                    "bounced",
                    f"host {mx}[{ip}] said: 550 5.1.1 <{rcpt}>: Recipient address rejected: "
                    "User unknown in virtual mailbox table (in reply to RCPT TO command)",
                )
            else:
                result = res("2.0.0", "sent", reply)
            steps.append((t, dline(tag, qid, rcpt, relay, (a, b, c, d), result, orig_to, use)))
        return steps, t

    def smtp_reply(self, t: int) -> str:
        """A remote MTA's "250" reply, in one of a few real-world shapes."""
        R = self.R
        r = R.random()
        if r < 0.5:
            return f"250 2.0.0 Ok: queued as {R.token(12, '0123456789ABCDEF')}"
        if r < 0.7:
            return f"250 2.0.0 OK id={R.token(6)}-{R.token(6)}-{R.randint(10, 99)}"
        if r < 0.85:
            return f"250 ok {t // US - R.randint(0, 3)} qp {R.randint(1000, 99999)}"
        return "250 Requested mail action okay, completed"

    # ------------------------------------------------------------------ message flows
    def inbound(self, t: int) -> Flow:
        """Internet -> port 25 -> (amavis) -> local mailboxes."""
        R = self.R
        client, cip = R.pick(INBOUND_CLIENTS)
        # 1%: an inbound DSN (from=<>), delivered locally, never relayed out
        sender = "" if R.chance(0.01) else self.remote_addr()[0]
        n = 1 if R.chance(0.78) else (2 if R.chance(0.75) else 3)
        rcpts = [self.local_addr() for _ in range(n)]
        smtpd = self.p_smtpd.session(t, t + 5 * US)
        tls = 1 if R.chance(0.7) else 0
        yield t, f"{smtpd}: connect from {client}[{cip}]"
        t += R.ms(30, 400)
        if tls:
            t += R.ms(20, 200)
            yield t, f"{smtpd}: Anonymous TLS connection established from {client}[{cip}]: {TLS_IN}"
        t += R.ms(20, 300)
        qid = self.qids.new(t)
        yield t, f"{smtpd}: {qid}: client={client}[{cip}]"
        t_arr = t
        t += R.ms(30, 900)
        domain = sender.rpartition("@")[2] or client.partition(".")[2]
        mid = self.mid(t, domain)
        yield t, f"{self.p_cleanup.tag(t)}: {qid}: message-id=<{mid}>"
        size = self.size()
        t += R.ms(1, 25)
        yield t, f"{self.qmgr}: {qid}: from=<{sender}>, size={size}, nrcpt={n} (queue active)"
        t_act = t
        steps: list[Step] = [
            (
                t + R.ms(3, 80),
                f"{smtpd}: disconnect from {client}[{cip}] "
                + disconnect_stats(tls, 0, 1, str(n), "1", True),
            ),
        ]
        resolved = [self.resolve_local(r) for r in rcpts]
        if R.chance(0.6):  # content_filter = smtp-amavis:[127.0.0.1]:10024
            b = R.ms(0.5, 10)
            scan = R.ms(250, 2500)
            t_re = t_act + b + scan
            sd2 = self.p_smtpd.session(t_re, t_re + 100_000)
            q2 = self.qids.new(t_re + 2_000)
            i = R.randint(0, 2)
            self.amavis_n[i] += 1
            apid = self.amavis_pids[i]
            steps += [
                (t_re, f"{sd2}: connect from localhost[127.0.0.1]"),
                (t_re + 2_000, f"{sd2}: {q2}: client=localhost[127.0.0.1]"),
                (t_re + 4_000, f"{self.p_cleanup.tag(t_re)}: {q2}: message-id=<{mid}>"),
                (
                    t_re + 6_000,
                    f"{self.qmgr}: {q2}: from=<{sender}>, size={size + 600 + R.randint(0, 400)}, "
                    f"nrcpt={n} (queue active)",
                ),
                (
                    t_re + 8_000,
                    f"{sd2}: disconnect from localhost[127.0.0.1] "
                    + disconnect_stats(0, 0, 1, str(n), "1", True),
                ),
                (
                    t_re + 9_000,
                    f"amavis[{apid}]: ({apid:05d}-{self.amavis_n[i] % 100:02d}) Passed CLEAN "
                    f"{{RelayedInbound}}, [{cip}]:{R.randint(32768, 60999)} [{cip}] <{sender}> -> "
                    f"{','.join(f'<{r}>' for r, _ in resolved)}, Queue-ID: {qid}, "
                    f"Message-ID: <{mid}>, "
                    f"mail_id: {R.b64(12).replace('/', '-').replace('+', '_')}, "
                    f"Hits: {R.randint(-30, 40) / 10:.1f}, size: {size}, "
                    f"queued_as: {q2}, {scan // 1000} ms",
                ),
            ]
            t_done = t_re + 10_000
            tag = self.p_smtp.tag(t_act)
            text = f"250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as {q2}"
            hop = (t_act - t_arr, b, R.ms(0, 2), scan)  # one transaction for all recipients
            # virtual aliases were expanded before the filter (orig_to shows here); the
            # re-injected copy (no_address_mappings) knows only the final addresses.
            filter_relay, ok = "127.0.0.1[127.0.0.1]:10024", res("2.0.0", "sent", text)
            for rcpt, orig in resolved:
                steps.append((t_done, dline(tag, qid, rcpt, filter_relay, hop, ok, orig)))
            steps.append(self.removed(t_done + R.ms(0.2, 2), qid))
            final = [(rcpt, "") for rcpt, _ in resolved]
            more, t_end = self.final_delivery(q2, t_re + 2_000, t_re + 6_000, final, mid)
            steps += more
            steps.append(self.removed(t_end + R.ms(0.2, 2), q2))
        else:
            more, t_end = self.final_delivery(qid, t_arr, t_act, resolved, mid)
            steps += more
            steps.append(self.removed(t_end + R.ms(0.2, 2), qid))
        steps.sort()
        yield from steps

    def submission(self, t: int) -> Flow:
        """Authenticated client -> submission (587) -> smtp to the world (or local)."""
        R = self.R
        user = R.pick(LOCAL_USERS)
        sender = f"{user}@example.com"
        if R.chance(0.5):
            client, cip = "unknown", self.unknown_ip()
        else:
            client, cip = (
                f"client-{R.randint(2, 250)}.isp.example.net",
                f"2001:db8:c0fe::{R.randint(2, 4000):x}",
            )
        local = R.chance(0.15)
        if local:
            rcpts = [self.local_addr()]
            site = REMOTE_SITES[0]
        else:
            site = R.pick(REMOTE_SITES)
            n = 1 if R.chance(0.85) else 2
            rcpts = [f"{R.pick(REMOTE_USERS)}@{site[0]}" for _ in range(n)]
            if n == 2 and rcpts[0] == rcpts[1]:
                rcpts.pop()
        n = len(rcpts)
        smtpd = self.p_sub.session(t, t + 5 * US)
        yield t, f"{smtpd}: connect from {client}[{cip}]"
        t += R.ms(60, 400)
        yield t, f"{smtpd}: Anonymous TLS connection established from {client}[{cip}]: {TLS_IN}"
        t += R.ms(100, 800)
        qid = self.qids.new(t)
        yield (
            t,
            f"{smtpd}: {qid}: client={client}[{cip}], sasl_method=PLAIN, sasl_username={sender}",
        )
        t_arr = t
        t += R.ms(50, 1500)
        mid = self.mid(t, "example.com")
        yield t, f"{self.p_cleanup.tag(t)}: {qid}: message-id=<{mid}>"
        t += R.ms(1, 40)
        yield (
            t,
            f"opendkim[{self.amavis_pids[0] + 7}]: {qid}: "
            "DKIM-Signature field added (s=mail, d=example.com)",
        )
        size = self.size()
        t += R.ms(1, 20)
        yield t, f"{self.qmgr}: {qid}: from=<{sender}>, size={size}, nrcpt={n} (queue active)"
        t_act = t
        steps: list[Step] = [
            (
                t + R.ms(2, 60),
                f"{smtpd}: disconnect from {client}[{cip}] "
                + disconnect_stats(1, 1, 1, str(n), "1", True),
            ),
        ]
        if local:
            more, t_end = self.final_delivery(
                qid, t_arr, t_act, [self.resolve_local(rcpts[0])], mid
            )
            steps += more
            steps.append(self.removed(t_end + R.ms(0.2, 2), qid))
            steps.sort()
            yield from steps
            return
        r = R.random()
        if r < 0.89:
            outcome = R.pick(("sent", "sent", "sent", "sent", "sent", "v6unreach"))
            more, t_end = self.smtp_out(qid, rcpts, site, t_arr, t_act, outcome)
            steps += more
            steps.append(self.removed(t_end + R.ms(0.2, 2), qid))
            steps.sort()
            yield from steps
            return
        if r < 0.975:  # deferred, retried from the deferred queue, then sent
            first = R.pick(("timeout", "greylist", "timeout"))
            more, t_end = self.smtp_out(qid, rcpts, site, t_arr, t_act, first)
            steps += more
            steps.sort()
            yield from steps
            t = t_end + R.randint(300, 1200) * US
            yield t, f"{self.qmgr}: {qid}: from=<{sender}>, size={size}, nrcpt={n} (queue active)"
            more, t_end = self.smtp_out(qid, rcpts, site, t_arr, t, "sent")
            more.append(self.removed(t_end + R.ms(0.2, 2), qid))
            more.sort()
            yield from more
            return
        if r < 0.997:  # hard bounce: a non-delivery notice back to our user
            more, t_end = self.smtp_out(qid, rcpts, site, t_arr, t_act, "bounced")
            steps += more
            nsteps, t_n = self.notice(
                qid, t_end + R.ms(1, 8), "sender non-delivery notification", sender, size, "local"
            )
            steps += nsteps
            steps.append(self.removed(t_n + R.ms(0.5, 3), qid))
            steps.sort()
            yield from steps
            return
        # a dead destination: retries with back-off, a delay warning after 4 hours, then sent
        more, t_end = self.smtp_out(qid, rcpts, site, t_arr, t_act, "timeout")
        steps += more
        steps.sort()
        yield from steps
        backoff = 300
        warned = False
        while True:
            t = t_end + (backoff + R.randint(0, 299)) * US
            backoff = min(backoff * 2, 4000)
            yield t, f"{self.qmgr}: {qid}: from=<{sender}>, size={size}, nrcpt={n} (queue active)"
            if t - t_arr > 5 * 3600 * US:
                more, t_end = self.smtp_out(qid, rcpts, site, t_arr, t, "sent")
                more.append(self.removed(t_end + R.ms(0.2, 2), qid))
                more.sort()
                yield from more
                return
            more, t_end = self.smtp_out(qid, rcpts, site, t_arr, t, "timeout")
            if not warned and t - t_arr > 4 * 3600 * US:
                warned = True
                nsteps, _ = self.notice(
                    qid, t_end + R.ms(1, 5), "sender delay notification", sender, size, "local"
                )
                more += nsteps
            more.sort()
            yield from more

    def relay_in(self, t: int) -> Flow:
        """Mail for the relay domain, passed on by ``postfix/relay/smtp``."""
        R = self.R
        client, cip = R.pick(INBOUND_CLIENTS)
        sender = self.remote_addr()[0]
        rcpt = f"{R.pick(LOCAL_USERS)}@{RELAY_DOMAIN}"
        yield from self._relay_session(t, client, cip, sender, rcpt, bounce=False)

    def _relay_session(
        self, t: int, client: str, cip: str, sender: str, rcpt: str, bounce: bool
    ) -> Flow:
        R = self.R
        smtpd = self.p_smtpd.session(t, t + 4 * US)
        yield t, f"{smtpd}: connect from {client}[{cip}]"
        t += R.ms(50, 600)
        qid = self.qids.new(t)
        yield t, f"{smtpd}: {qid}: client={client}[{cip}]"
        t_arr = t
        t += R.ms(30, 600)
        mid = self.mid(t, sender.rpartition("@")[2])
        yield t, f"{self.p_cleanup.tag(t)}: {qid}: message-id=<{mid}>"
        size = self.size()
        t += R.ms(1, 20)
        yield t, f"{self.qmgr}: {qid}: from=<{sender}>, size={size}, nrcpt=1 (queue active)"
        t_act = t
        steps: list[Step] = [
            (
                t + R.ms(2, 50),
                f"{smtpd}: disconnect from {client}[{cip}] "
                + disconnect_stats(0, 0, 1, "1", "1", True),
            ),
        ]
        site = (RELAY_DOMAIN, *RELAY_NEXTHOP)
        more, t_end = self.smtp_out(
            qid, [rcpt], site, t_arr, t_act, "bounced" if bounce else "sent", proc=self.p_relay
        )
        if bounce:  # backscatter: the notice goes to the (remote) envelope sender by smtp
            more = [
                (
                    tt,
                    s.replace(
                        "User unknown in virtual mailbox table",
                        "User unknown in local recipient table",
                    ),
                )
                for tt, s in more
            ]
            s_domain = sender.rpartition("@")[2]
            s_site = next((s for s in REMOTE_SITES if s[0] == s_domain), REMOTE_SITES[0])
            nsteps, t_n = self.notice(
                qid,
                t_end + R.ms(1, 8),
                "sender non-delivery notification",
                sender,
                size,
                "smtp",
                s_site,
            )
            more += nsteps
            t_end = t_n
        steps += more
        steps.append(self.removed(t_end + R.ms(0.2, 2), qid))
        steps.sort()
        yield from steps

    def backscatter(self, t: int) -> Flow:
        """A legitimate null-sender bounce that leaves by smtp, a few times an hour."""
        while True:
            t += self.R.expo(3600 / MIXED_BACKSCATTER_PER_H)
            R = self.R
            sender = self.remote_addr()[0]
            rcpt = f"{R.pick(('olduser', 'j.smith', 'webmaster', 'k.ito'))}@{RELAY_DOMAIN}"
            client, cip = R.pick(INBOUND_CLIENTS)
            self.sched.spawn(self._relay_session(t, client, cip, sender, rcpt, bounce=True))
            yield t, ""

    def forward_in(self, t: int) -> Flow:
        """Inbound to a user with a ~/.forward: local(8) resubmits, smtp relays it out."""
        R = self.R
        client, cip = R.pick(INBOUND_CLIENTS)
        sender = self.remote_addr()[0]
        user = R.pick(LOCAL_USERS[:6])
        rcpt = f"{user}@{MIXED_FQDN}"
        smtpd = self.p_smtpd.session(t, t + 4 * US)
        yield t, f"{smtpd}: connect from {client}[{cip}]"
        t += R.ms(50, 600)
        qid = self.qids.new(t)
        yield t, f"{smtpd}: {qid}: client={client}[{cip}]"
        t_arr = t
        t += R.ms(30, 600)
        mid = self.mid(t, sender.rpartition("@")[2])
        yield t, f"{self.p_cleanup.tag(t)}: {qid}: message-id=<{mid}>"
        size = self.size()
        t += R.ms(1, 20)
        yield t, f"{self.qmgr}: {qid}: from=<{sender}>, size={size}, nrcpt=1 (queue active)"
        t_act = t
        steps: list[Step] = [
            (
                t + R.ms(2, 50),
                f"{smtpd}: disconnect from {client}[{cip}] "
                + disconnect_stats(0, 0, 1, "1", "1", True),
            ),
        ]
        b, d = R.ms(0.5, 8), R.ms(5, 40)
        t_f = t_act + b + d
        q2 = self.qids.new(t_f - 2_000)
        steps.append((t_f - 2_000, f"{self.p_cleanup.tag(t_f)}: {q2}: message-id=<{mid}>"))
        steps.append(
            (
                t_f - 1_000,
                f"{self.qmgr}: {q2}: from=<{sender}>, size={size + 200}, nrcpt=1 (queue active)",
            )
        )
        local, forwarded = self.p_local.tag(t_f), res("2.0.0", "sent", f"forwarded as {q2}")
        steps.append((t_f, dline(local, qid, rcpt, "local", (t_act - t_arr, b, 0, d), forwarded)))
        steps.append(self.removed(t_f + R.ms(0.2, 2), qid))
        dest, site = self.remote_addr()
        more, t_end = self.smtp_out(q2, [dest], site, t_f - 2_000, t_f, "sent", orig_to=rcpt)
        steps += more
        steps.append(self.removed(t_end + R.ms(0.2, 2), q2))
        steps.sort()
        yield from steps

    def pickup(self, t: int) -> Flow:
        """Locally submitted mail (sendmail(1) -> maildrop -> pickup)."""
        R = self.R
        uid, who = R.pick(((0, "root"), (0, "root"), (33, "www-data"), (1000, "alice")))
        qid = self.qids.new(t)
        yield t, f"{self.p_pickup.tag(t)}: {qid}: uid={uid} from=<{who}>"
        t_arr = t
        t += R.ms(1, 10)
        yield t, f"{self.p_cleanup.tag(t)}: {qid}: message-id=<{utc_stamp(t)}.{qid}@{MIXED_FQDN}>"
        t += R.ms(1, 10)
        yield (
            t,
            f"{self.qmgr}: {qid}: from=<{who}@{MIXED_FQDN}>, size={R.randint(600, 4000)}, "
            "nrcpt=1 (queue active)",
        )
        if who == "root" and R.chance(0.5):  # aliases: root -> admin@example.net
            site = REMOTE_SITES[0]
            steps, t_end = self.smtp_out(
                qid, ["admin@example.net"], site, t_arr, t, "sent", orig_to="root"
            )
        else:
            steps, t_end = self.final_delivery(qid, t_arr, t, [(f"{who}@{MIXED_FQDN}", who)], "")
        steps.append(self.removed(t_end + R.ms(0.2, 2), qid))
        steps.sort()
        yield from steps

    # ------------------------------------------------------------------ unwanted traffic
    def reject(self, t: int) -> Flow:
        R = self.R
        ip = self.unknown_ip()
        helo = R.pick(
            (
                "WIN-" + R.token(8, "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"),
                "User",
                "ylmf-pc",
                f"{ip}",
                "localhost",
                "mail.example.net",
            )
        )
        smtpd = self.p_smtpd.session(t, t + 6 * US)
        if R.chance(0.4):
            name = f"{ip.replace('.', '-')}.dyn.example.net"
            yield (
                t,
                (
                    f"{smtpd}: warning: hostname {name} does not resolve to address {ip}: "
                    "Name or service not known"
                ),
            )
        yield t, f"{smtpd}: connect from unknown[{ip}]"
        t += R.ms(200, 2500)
        sender = f"{R.pick(REMOTE_USERS)}{R.randint(1, 999)}@{R.pick(REMOTE_SITES)[0]}"
        r = R.random()
        if r < 0.35:
            rcpt = f"{R.pick(REMOTE_USERS)}@{R.pick(REMOTE_SITES)[0]}"
            why = f"554 5.7.1 <{rcpt}>: Relay access denied"
        elif r < 0.6:
            rcpt = (
                f"{R.pick(('info', 'admin', 'test', 'sales', 'ceo'))}{R.randint(1, 99)}@example.com"
            )
            why = (
                f"550 5.1.1 <{rcpt}>: Recipient address rejected: "
                "User unknown in virtual mailbox table"
            )
        elif r < 0.8:
            rcpt = self.local_addr()
            why = (
                f"554 5.7.1 Service unavailable; Client host [{ip}] blocked using dnsbl.example.org"
            )
        else:
            rcpt = self.local_addr()
            why = f"450 4.7.1 Client host rejected: cannot find your reverse hostname, [{ip}]"
        yield (
            t,
            (
                f"{smtpd}: NOQUEUE: reject: RCPT from unknown[{ip}]: {why}; "
                f"from=<{sender}> to=<{rcpt}> proto=ESMTP helo=<{helo}>"
            ),
        )
        t += R.ms(100, 1500)
        if R.chance(0.7):
            yield (
                t,
                f"{smtpd}: disconnect from unknown[{ip}] "
                + disconnect_stats(0, 0, 1, "0/1", "", True),
            )
        else:
            yield t, f"{smtpd}: lost connection after RCPT from unknown[{ip}]"
            yield (
                t,
                f"{smtpd}: disconnect from unknown[{ip}] "
                + disconnect_stats(0, 0, 1, "0/1", "", False),
            )

    def port_scan(self, t: int) -> Flow:
        R = self.R
        ip = self.unknown_ip()
        smtpd = self.p_smtpd.session(t, t + 2 * US)
        yield t, f"{smtpd}: connect from unknown[{ip}]"
        t += R.ms(5, 900)
        if R.chance(0.7):
            yield t, f"{smtpd}: lost connection after CONNECT from unknown[{ip}]"
            yield t, f"{smtpd}: disconnect from unknown[{ip}] commands=0/0"
        else:
            yield (
                t,
                f"{smtpd}: improper command pipelining after EHLO from unknown[{ip}]: QUIT\\r\\n",
            )
            yield t, f"{smtpd}: disconnect from unknown[{ip}] ehlo=1 quit=1 commands=2"

    def sasl_guess(self, t: int) -> Flow:
        R = self.R
        ip = self.unknown_ip()
        smtpd = self.p_sub.session(t, t + 12 * US)
        yield t, f"{smtpd}: connect from unknown[{ip}]"
        t += R.ms(200, 800)
        yield t, f"{smtpd}: Anonymous TLS connection established from unknown[{ip}]: {TLS_IN}"
        t += R.ms(1500, 6000)
        yield t, f"{smtpd}: warning: unknown[{ip}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6"
        t += R.ms(5, 300)
        yield t, f"{smtpd}: lost connection after AUTH from unknown[{ip}]"
        yield t, f"{smtpd}: disconnect from unknown[{ip}] ehlo=2 starttls=1 auth=0/1 commands=3/4"

    # ------------------------------------------------------------------ other programs
    def sshd(self, t: int) -> Flow:
        R = self.R
        pid = self.pids.new(t)
        ip = self.unknown_ip()
        port = R.randint(1024, 65535)
        if R.chance(0.05):
            user = R.pick(LOCAL_USERS[:4])
            self.session_no += 1
            yield (
                t,
                (
                    f"sshd[{pid}]: Accepted publickey for {user} "
                    f"from 2001:db8:c0fe::{R.randint(2, 99):x} "
                    f"port {port} ssh2: ED25519 SHA256:{R.b64(43)}"
                ),
            )
            t += R.ms(5, 40)
            yield t, f"systemd-logind[412]: New session {self.session_no} of user {user}."
            t += R.ms(5, 40)
            yield (
                t,
                f"systemd[1]: Started session-{self.session_no}.scope - "
                f"Session {self.session_no} of User {user}.",
            )
            return
        user = R.pick(("root", "admin", "test", "oracle", "ubuntu", "user", "git", "postgres"))
        if user == "root":
            t += R.ms(500, 3000)
            yield t, f"sshd[{pid}]: Received disconnect from {ip} port {port}:11: Bye Bye [preauth]"
            yield (
                t,
                f"sshd[{pid}]: Disconnected from authenticating user root {ip} "
                f"port {port} [preauth]",
            )
        else:
            yield t, f"sshd[{pid}]: Invalid user {user} from {ip} port {port}"
            t += R.ms(300, 3000)
            yield (
                t,
                f"sshd[{pid}]: Connection closed by invalid user {user} {ip} port {port} [preauth]",
            )

    def ufw(self, t: int) -> Flow:
        R = self.R
        up = t // US - self.start // US + self.kernel_boot_s
        dpt = R.pick((23, 22, 3389, 445, 8080, 5060, 1433, 6379, 2323))
        yield (
            t,
            (
                f"kernel: [{up}.{t % US:06d}] [UFW BLOCK] IN=eth0 OUT= "
                "MAC=52:54:00:12:34:56:52:54:00:"
                f"65:43:21:08:00 SRC={self.unknown_ip()} DST=192.0.2.10 LEN=40 TOS=0x00 PREC=0x00 "
                f"TTL={R.randint(40, 250)} ID={R.randint(1, 65535)} PROTO=TCP "
                f"SPT={R.randint(1024, 65535)} DPT={dpt} "
                f"WINDOW=1024 RES=0x00 SYN URGP=0"
            ),
        )

    def imap(self, t: int) -> Flow:
        R = self.R
        user = f"{R.pick(LOCAL_USERS)}@example.com"
        pid = self.pids.new(t)
        sess = R.b64(16)
        rip = f"2001:db8:c0fe::{R.randint(2, 4000):x}" if R.chance(0.4) else self.unknown_ip()
        yield (
            t,
            (
                f"dovecot: imap-login: Login: user=<{user}>, method=PLAIN, rip={rip}, "
                f"lip=192.0.2.10, mpid={pid}, TLS, session=<{sess}>"
            ),
        )
        t += R.ms(200, 600_000)
        yield (
            t,
            (
                f"dovecot: imap({user})<{pid}><{sess}>: Logged out in={R.randint(50, 3000)} "
                f"out={R.randint(400, 900_000)} deleted=0 expunged=0 trashed=0 hdr_count=0 "
                f"hdr_bytes=0 body_count=0 body_bytes=0"
            ),
        )

    def cron(self, t: int) -> Flow:
        """Debian's cron jobs: sysstat every 10 min, hourly run-parts; mail from some."""
        R = self.R
        t = (t // (600 * US) + 1) * 600 * US
        while True:
            tm = time.gmtime(t // US + self.offset_s)
            t1 = t + R.ms(1, 400)
            yield (
                t1,
                f"CRON[{self.pids.new(t1)}]: (root) CMD "
                "(command -v debian-sa1 > /dev/null && debian-sa1 1 1)",
            )
            if tm.tm_min == 10:
                t2 = t + 7 * 60 * US + R.ms(1, 400)
                yield (
                    t2,
                    f"CRON[{self.pids.new(t2)}]: (root) CMD "
                    "(cd / && run-parts --report /etc/cron.hourly)",
                )
                if R.chance(0.3):
                    self.sched.spawn(self.pickup(t2 + R.ms(200, 2000)))
            if tm.tm_min in (0, 30):
                t3 = t + 9 * 60 * US + R.ms(1, 100)
                yield (
                    t3,
                    "systemd[1]: Starting phpsessionclean.service - Clean php session files...",
                )
                t3 += R.ms(100, 700)
                yield t3, "systemd[1]: phpsessionclean.service: Deactivated successfully."
                yield t3, "systemd[1]: Finished phpsessionclean.service - Clean php session files."
            t += 600 * US

    def stats(self, t: int) -> Flow:
        """anvil(8) and scache(8) statistics every 600 s (anvil_status_update_time)."""
        R = self.R
        anvil = f"postfix/anvil[{self.pids.new(t)}]"
        scache = f"postfix/scache[{self.pids.new(t)}]"
        while True:
            t += 600 * US + R.ms(0, 30)
            ip = self.unknown_ip()
            at = ctime15(t - R.randint(5, 590) * US, self.offset_s)
            yield (
                t,
                f"{anvil}: statistics: max connection rate {R.randint(1, 6)}/60s "
                f"for (smtp:{ip}) at {at}",
            )
            yield (
                t,
                f"{anvil}: statistics: max connection count {R.randint(1, 3)} "
                f"for (smtp:{ip}) at {at}",
            )
            yield t, f"{anvil}: statistics: max cache size {R.randint(2, 12)} at {at}"
            hits, miss = R.randint(0, 40), R.randint(5, 80)
            t2 = t + R.ms(100, 30_000)
            yield (
                t2,
                f"{scache}: statistics: start interval {ctime15(t2 - 600 * US, self.offset_s)}",
            )
            yield (
                t2,
                (
                    f"{scache}: statistics: domain lookup hits={hits} miss={miss} "
                    f"success={100 * hits // (hits + miss)}%"
                ),
            )
            yield t2, f"{scache}: statistics: max simultaneous domains=1 addresses=1 connection=1"

    def arrivals(self, t: int) -> Flow:
        R = self.R
        two_pi_day = 2 * math.pi / 86400
        while True:
            local_s = t // US + self.offset_s
            rate = MIXED_ARRIVALS_PER_S * (1.0 + 0.6 * math.sin(two_pi_day * (local_s - 10 * 3600)))
            t += R.expo(1.0 / rate)
            make = self.kind(R)
            self.sched.spawn(make(t))
            yield t, ""

    # ------------------------------------------------------------------ the storm
    def storm(self, t: int) -> Flow:
        """fetchmail -> smtpd -> local forwarding loop -> bounce -> smtp out (~5/s, ~4 min)."""
        R = self.R
        fpid = self.pids.new(t)
        fm = f"fetchmail[{fpid}]"
        total = R.randint(9000, 15000)
        yield t, f"{fm}: {total} messages for listuser at pop.example.net ({total * 4700} octets)."
        t += R.ms(300, 900)
        end = t + STORM_SECONDS * US
        smtpd = self.p_smtpd.session(t, end + 10 * US)
        yield t, f"{smtpd}: connect from localhost[127.0.0.1]"
        pick = Weighted(list(INCIDENT_BOUNCES_BY_DOMAIN.items()))
        k = 0
        t += R.ms(100, 400)
        while t < end:
            k += 1
            size = R.randint(2500, 12000)
            yield (
                t,
                f"{fm}: reading message listuser@pop.example.net:{k} of {total} ({size} octets)",
            )
            yield t, f"{fm}: not flushed"
            domain = pick(R)
            self.sched.spawn(self.loop_message(t + R.ms(5, 30), smtpd, fm, domain, size))
            t += max(40_000, R.expo(1.0 / STORM_PER_S))  # fetchmail: one message at a time
        yield t, f"{fm}: terminated with signal 2"
        t += R.ms(1, 30)
        yield t, f"{smtpd}: lost connection after DATA from localhost[127.0.0.1]"
        yield (
            t,
            (
                f"{smtpd}: disconnect from localhost[127.0.0.1] ehlo=1 mail={k} rcpt={k} "
                f"data={k}/{k + 1} commands={1 + 3 * k}/{2 + 3 * k}"
            ),
        )

    def loop_message(self, t: int, smtpd: str, fm: str, domain: str, size: int) -> Flow:
        R = self.R
        addr = list_address(R, domain, "listuser=example.com")
        qid = self.qids.new(t)
        yield t, f"{smtpd}: {qid}: client=localhost[127.0.0.1]"
        t_arr = t
        t += R.ms(3, 15)
        yield t, f"{self.p_cleanup.tag(t)}: {qid}: message-id=<{R.hexs(16)}@{domain}>"
        t += R.ms(2, 10)
        yield t, f"{self.qmgr}: {qid}: from=<{addr}>, size={size}, nrcpt=1 (queue active)"
        t_act = t
        t += R.ms(1, 5)
        yield t, f"{fm}: SMTP< 250 2.0.0 Ok: queued as {qid}"
        b, d = R.ms(0.5, 5), R.ms(5, 30)
        t = t_act + b + d
        user = f"listuser@{MIXED_FQDN}"
        loop = res("5.4.6", "bounced", f"mail forwarding loop for {user}")
        yield t, dline(self.p_local.tag(t), qid, user, "local", (t_act - t_arr, b, 0, d), loop)
        mx, ip = LIST_SITES[domain]
        steps, _ = self.notice(
            qid,
            t + R.ms(1, 6),
            "sender non-delivery notification",
            addr,
            size,
            "smtp",
            (domain, mx, ip),
        )
        t_notice_active = steps[2][0]  # notice(): cleanup, bounce, qmgr from=<>, ...
        steps.append(self.removed(t_notice_active + R.ms(0.2, 2), qid))
        steps.sort()
        yield from steps


def list_address(R: Rng, domain: str, subscriber: str) -> str:
    """A list's envelope sender (its bounce address), in the list software's VERP style;
    ``subscriber`` is the VERP-encoded member address (``listuser=example.jp``)."""
    name = R.pick(LIST_NAMES)
    if domain in ("groups.example.com", "alerts.example.com"):
        return f"{name}+bnc{R.token(10)}@{domain}"
    if domain == "lists.example.org":
        return f"bounce-debian-{name}={subscriber}@{domain}"
    if domain == "list.example.net":
        return f"{name}-return-{R.randint(1000, 9999)}-{subscriber}@{domain}"
    return f"{name}-bounces+{subscriber}@{domain}"


def generate_mixed(
    out: TextIO,
    *,
    lines: int,
    seed: int = 1,
    fmt: str = "classic",
    start: datetime | None = None,
    storm: bool = True,
) -> int:
    """Write ``lines`` lines of mixed traffic (with one storm at half-way) to ``out``."""
    if lines < 1:
        raise ValueError(f"lines must be positive, not {lines}")
    start = start or datetime.fromisoformat(DEFAULT_START)
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    off = start.utcoffset()
    offset_s = int(off.total_seconds()) if off is not None else 0
    start_us = int(start.timestamp()) * US
    storm_at = max(1, lines // 2) if storm else None
    m = Mixed(seed, start_us, offset_s)
    m.sched.spawn(m.arrivals(start_us))
    m.sched.spawn(m.backscatter(start_us))
    m.sched.spawn(m.cron(start_us))
    m.sched.spawn(m.stats(start_us))
    return write_steps(
        out,
        m.sched.run(),
        fmt,
        MIXED_HOST,
        offset_s,
        limit=lines,
        trigger_at=storm_at or 0,
        on_trigger=lambda t: m.sched.spawn(m.storm(t + US)),
    )


# ============================================================================= the incident
class Incident:
    """The seed incident, second by second (see the INCIDENT_* constants)."""

    def __init__(self) -> None:
        self.R = R = Rng(INCIDENT_SEED)
        y, mo, d = INCIDENT_DATE
        self.midnight = int(datetime(y, mo, d, tzinfo=UTC).timestamp()) - INCIDENT_UTC_OFFSET_S
        self.sched = Scheduler()
        fixed = [
            *(pid for _, pid in INCIDENT_PID_SIGHTINGS),
            INCIDENT_SMTPD_PID,
            INCIDENT_ANVIL_PID,
            *(p for ps in INCIDENT_FIRST_PIDS.values() for p in ps),
        ]
        # pids climb through the seed's own (time, pid) sightings
        anchors = [(self.at(hms), pid) for hms, pid in INCIDENT_PID_SIGHTINGS]
        self.pids = Pids(R, anchors, 0.5, fixed)
        self.qids = Qids(R, 0.0, 0.0)  # Postfix 2.7: short IDs only
        self.qmgr = f"postfix/qmgr[{INCIDENT_QMGR_PID}]"
        self.p_cleanup = Proc("postfix/cleanup", self.pids, 2)
        self.p_local = Proc("postfix/local", self.pids, 2)
        self.p_bounce = Proc("postfix/bounce", self.pids, 2)
        self.p_smtp = Proc("postfix/smtp", self.pids, 4)
        self.p_pickup = f"postfix/pickup[{INCIDENT_PICKUP_PID}]"
        # notices deferred by the relay: (deferred at, queued at, qid, recipient, size)
        self.deferred: list[tuple[int, int, str, str, int]] = []
        self.relay_conns: list[Conn] = []

    def at(self, hms: str) -> int:
        h, m, s = (int(x) for x in hms.split(":"))
        return (self.midnight + h * 3600 + m * 60 + s) * US

    def deliver_procs(self, t: int) -> tuple[str, str]:
        """(cleanup, local) of a normal delivery; before the storm each is a fresh process."""
        if t < self.at(INCIDENT_FETCHMAIL_STORM[0]):
            return f"postfix/cleanup[{self.pids.new(t)}]", f"postfix/local[{self.pids.new(t)}]"
        return self.p_cleanup.tag(t), self.p_local.tag(t)

    # ------------------------------------------------------------------ normal traffic
    def local_mail(self, t: int) -> Flow:
        """A locally submitted message delivered by procmail (never relayed)."""
        R = self.R
        user = R.pick(("listuser", "root", "listuser"))
        qid = self.qids.new(t)
        cleanup, local = self.deliver_procs(t)
        yield t, f"{self.p_pickup}: {qid}: uid={0 if user == 'root' else 1000} from=<{user}>"
        t_arr = t
        t += R.ms(2, 15)
        yield t, f"{cleanup}: {qid}: message-id=<{utc_stamp(t)}.{qid}@{INCIDENT_FQDN}>"
        t += R.ms(2, 15)
        yield (
            t,
            f"{self.qmgr}: {qid}: from=<{user}@{INCIDENT_FQDN}>, "
            f"size={R.randint(500, 3000)}, nrcpt=1 (queue active)",
        )
        b, d = R.ms(1, 20), R.ms(20, 200)
        t_act = t
        t += b + d
        to = f"{user}@{INCIDENT_FQDN}"
        ok = res("2.0.0", "sent", f"delivered to command: {PROCMAIL}")
        yield t, dline(local, qid, to, "local", (t_act - t_arr, b, 0, d), ok, user)
        t += R.ms(0.5, 3)
        yield t, f"{self.qmgr}: {qid}: removed"

    def normal_traffic(self, t: int) -> Flow:
        end = self.at(INCIDENT_TRAFFIC_END)
        while True:
            t += self.R.expo(55.0)
            if t >= end:
                return
            self.sched.spawn(self.local_mail(t))
            yield t, ""

    def fetchmail_first(self) -> Flow:
        """17:50:06: fetchmail[5447], a handful of ordinary messages to procmail."""
        R = self.R
        hms, pid = INCIDENT_FETCHMAIL_FIRST
        t = self.at(hms)
        fm = f"fetchmail[{pid}]"
        yield t, f"{fm}: サーバ証明書検証エラー: self signed certificate"
        t += R.ms(400, 900)
        smtpd = f"postfix/smtpd[{self.pids.new(t)}]"
        yield t, f"{smtpd}: connect from localhost[127.0.0.1]"
        for _ in range(4):
            t += R.ms(150, 700)
            qid = self.qids.new(t)
            cleanup, local = self.deliver_procs(t)
            yield t, f"{smtpd}: {qid}: client=localhost[127.0.0.1]"
            t_arr = t
            t += R.ms(3, 12)
            yield t, f"{cleanup}: {qid}: message-id=<{R.hexs(16)}@mail.example.jp>"
            t += R.ms(3, 12)
            yield (
                t,
                f"{self.qmgr}: {qid}: from=<{R.pick(REMOTE_USERS)}@example.jp>, "
                f"size={R.randint(2000, 9000)}, nrcpt=1 (queue active)",
            )
            t_act = t
            t += R.ms(1, 4)
            yield t, f"{fm}: SMTP< 250 2.0.0 Ok: queued as {qid}"
            b, d = R.ms(1, 10), R.ms(30, 150)
            t = t_act + b + d
            ok = res("2.0.0", "sent", f"delivered to command: {PROCMAIL}")
            yield t, dline(local, qid, INCIDENT_LOOP_USER, "local", (t_act - t_arr, b, 0, d), ok)
            t += R.ms(0.5, 3)
            yield t, f"{self.qmgr}: {qid}: removed"
        t += R.ms(50, 300)
        yield t, f"{smtpd}: disconnect from localhost[127.0.0.1]"

    # ------------------------------------------------------------------ the storm
    def storm_schedule(self) -> list[tuple[int, str, str]]:
        """(arrival, outcome "sent" | "sasl", destination domain) of every looped message."""
        R = self.R
        first = self.at(INCIDENT_FIRST_SENT) + 30_000
        last = self.at(INCIDENT_LAST_SENT) + 40_000
        n = INCIDENT_BOUNCES_SENT + INCIDENT_SASL_DEFERRED_IN_WINDOW
        gaps = [R.expo(1.0) for _ in range(n - 1)]
        scale = (last - first) / sum(gaps)
        times = [first]
        for g in gaps:
            times.append(times[-1] + max(1_000, int(g * scale)))
        times[-1] = last
        # the seed's first "mail transport unavailable" line (18:03:01, delay=550) is a notice
        # made at 17:53:51: make the first SASL failure that one.
        pin = self.at(INCIDENT_FIRST_SASL_DEFER) + 520_000
        i0 = next(i for i, x in enumerate(times) if x >= pin)
        times[i0] = pin
        domains = [d for d, c in INCIDENT_BOUNCES_BY_DOMAIN.items() for _ in range(c)]
        for i in range(len(domains) - 1, 0, -1):  # Fisher-Yates with our own generator
            j = int(R.random() * (i + 1))
            domains[i], domains[j] = domains[j], domains[i]
        later = list(range(i0 + 1, n - 1))
        defer = {i0}
        while len(defer) < INCIDENT_SASL_DEFERRED_IN_WINDOW:
            defer.add(later[int(R.random() * len(later))])
        weights = Weighted(list(INCIDENT_BOUNCES_BY_DOMAIN.items()))
        plan: list[tuple[int, str, str]] = []
        di = 0
        for i, t in enumerate(times):
            if i in defer:
                plan.append((t, "sasl", weights(R)))
            else:
                plan.append((t, "sent", domains[di]))
                di += 1
        t = self.at(INCIDENT_LAST_SENT) + US + R.ms(100, 900)
        stop = self.at(INCIDENT_FETCHMAIL_SIGINT)
        while True:
            t += R.expo(1.0 / INCIDENT_LATE_LOOP_PER_S)
            if t >= stop - 300_000:
                break
            plan.append((t, "sasl", weights(R)))
        return plan

    def fetchmail_storm(self) -> Flow:
        R = self.R
        hms, pid = INCIDENT_FETCHMAIL_STORM
        t = self.at(hms)
        fm = f"fetchmail[{pid}]"
        smtpd = f"postfix/smtpd[{INCIDENT_SMTPD_PID}]"
        self.p_cleanup.seed(INCIDENT_FIRST_PIDS["postfix/cleanup"], t)
        self.p_local.seed(INCIDENT_FIRST_PIDS["postfix/local"], t)
        self.p_bounce.seed(INCIDENT_FIRST_PIDS["postfix/bounce"], t)
        self.p_smtp.seed(INCIDENT_FIRST_PIDS["postfix/smtp"], t)
        yield t, f"{fm}: サーバ証明書検証エラー: self signed certificate"
        t += R.ms(18_000, 19_000)
        yield t, f"{smtpd}: connect from localhost[127.0.0.1]"
        plan = self.storm_schedule()
        t_ref = self.at("17:54:52")
        rate = INCIDENT_FETCHMAIL_NTH_AT_175452 / ((t_ref - self.at(hms)) / US)
        for k, (ta, outcome, domain) in enumerate(plan):
            if k % 150 == 75 or (ta // US == t_ref // US and k % 3 == 0):
                nth = int((ta - self.at(hms)) / US * rate)
                yield (
                    ta - 2_000,
                    (
                        f"{fm}: {INCIDENT_POP_ACCOUNT} 宛に届いた {nth} 番目のメッセージ"
                        f"(全部で {INCIDENT_FETCHMAIL_TOTAL})を読み込んでいます "
                        f"({R.randint(2500, 9000)} バイト)"
                    ),
                )
                yield ta - 1_000, f"{fm}: サーバからメッセージを削除しませんでした。"
            self.sched.spawn(self.loop_message(ta, smtpd, fm, outcome, domain))
            yield ta, ""
        t = self.at(INCIDENT_FETCHMAIL_SIGINT) + R.ms(100, 600)
        yield t, f"{fm}: シグナル 2 で終了しました。"
        t += R.ms(2, 20)
        yield t, f"{smtpd}: lost connection after DATA from localhost[127.0.0.1]"
        yield t, f"{smtpd}: disconnect from localhost[127.0.0.1]"

    def loop_message(self, t: int, smtpd: str, fm: str, outcome: str, domain: str) -> Flow:
        R = self.R
        addr = list_address(R, domain, "listuser=example.jp")
        qid = self.qids.new(t)
        yield t, f"{smtpd}: {qid}: client=localhost[127.0.0.1]"
        t_arr = t
        t += R.ms(2, 8)
        cleanup = self.p_cleanup.tag(t)
        yield t, f"{cleanup}: {qid}: message-id=<{R.hexs(16)}@{domain}>"
        if R.chance(0.1):
            yield t, f"{cleanup}: {qid}: resent-message-id=<{R.hexs(12)}@{domain}>"
        size = R.randint(2600, 9500)
        t += R.ms(2, 8)
        yield t, f"{self.qmgr}: {qid}: from=<{addr}>, size={size}, nrcpt=1 (queue active)"
        t_act = t
        t += R.ms(0.5, 3)
        yield t, f"{fm}: SMTP< 250 2.0.0 Ok: queued as {qid}"
        b, d = R.ms(0.2, 4), R.ms(12, 30)
        t = t_act + b + d
        loop = res("5.4.6", "bounced", f"mail forwarding loop for {INCIDENT_LOOP_USER}")
        local = self.p_local.tag(t)
        yield t, dline(local, qid, INCIDENT_LOOP_USER, "local", (t_act - t_arr, b, 0, d), loop)
        t += R.ms(1, 5)
        nq = self.qids.new(t)
        n_arr = t
        yield t, f"{self.p_cleanup.tag(t)}: {nq}: message-id=<{utc_stamp(t)}.{nq}@{INCIDENT_FQDN}>"
        t += R.ms(0.5, 2)
        yield t, f"{self.p_bounce.tag(t)}: {qid}: sender non-delivery notification: {nq}"
        t += R.ms(5, 40)
        nsize = size + R.randint(1850, 2000)
        yield t, f"{self.qmgr}: {nq}: from=<>, size={nsize}, nrcpt=1 (queue active)"
        n_act = t
        t += R.ms(0.3, 2)
        yield t, f"{self.qmgr}: {qid}: removed"
        a = n_act - n_arr
        b = R.ms(0, 70) if R.chance(0.3) else R.ms(0, 4)
        if outcome == "sent":
            conn, c = self.relay_session(n_act + b)
            d = R.ms(190, 300)
            t = n_act + b + c + d
            conn.last = t  # busy until the end of the transaction
            skew = t // US - INCIDENT_RELAY_CLOCK_SKEW_S  # the relay's clock, as in the seed
            ok = res("2.0.0", "sent", f"250 ok {skew} qp {R.randint(10000, 99999)}")
            yield t, dline(conn.tag, nq, addr, INCIDENT_RELAY, (a, b, c, d), ok, "", conn.uses)
            t += R.ms(0.3, 2)
            yield t, f"{self.qmgr}: {nq}: removed"
            return
        c = R.ms(250, 320)
        t = n_act + b + c
        yield t, dline(self.p_smtp.tag(n_act), nq, addr, INCIDENT_RELAY, (a, b, c, 0), SASL_535)
        self.deferred.append((t, n_arr, nq, addr, nsize))

    def relay_session(self, t: int) -> tuple[Conn, int]:
        """A free cached session to the relay, or a new one (the provider drops a session
        after a few messages); returns it and the connection set-up delay."""
        R = self.R
        conn = next((c for c in self.relay_conns if c.last <= t), None)
        if conn is None:
            conn = Conn()
            self.relay_conns.append(conn)
        elif conn.born > 0 and t - conn.last < 2 * US:
            conn.uses += 1
            conn.born -= 1
            return conn, R.ms(20, 40)
        conn.tag = self.p_smtp.tag(t)
        conn.uses = 1
        conn.born = R.randint(0, 3)  # uses left on this session
        return conn, R.ms(250, 420)

    # ------------------------------------------------------------------ aftermath
    def queue_scan(self, hms: str, lo: int, hi: int, first: bool) -> Flow:
        """A deferred-queue run after the transport change: every eligible notice meets
        the error(8) agent (``mail transport unavailable``), as in the seed at 18:03:01."""
        R = self.R
        t = self.at(hms) + 50_000
        yield t, ""  # wake up first: the deferred list is complete by now
        err = (
            f"postfix/error[{INCIDENT_ERROR_PID}]"
            if first
            else f"postfix/error[{self.pids.new(t)}]"
        )
        steps: list[Step] = []
        # the seed's line: delay=550, delays=549/0.73/0/0.03 (queue manager latency 0.73 s)
        adelay, xdelay = (730_000, 30_000) if first else (R.ms(20, 200), R.ms(0, 40))
        for _, n_arr, nq, addr, nsize in (x for x in self.deferred if lo <= x[0] < hi):
            steps.append((t, f"{self.qmgr}: {nq}: from=<>, size={nsize}, nrcpt=1 (queue active)"))
            line = dline(err, nq, addr, "none", (t - n_arr, adelay, 0, xdelay), UNAVAILABLE)
            steps.append((t + adelay + xdelay, line))
            t += R.ms(2, 12)
            adelay += R.ms(5, 12)
            xdelay = R.ms(25, 45)
        steps.sort()
        yield from steps

    def aftermath(self) -> Flow:
        R = self.R
        t = self.at(INCIDENT_ANVIL_STATS)
        anvil = f"postfix/anvil[{INCIDENT_ANVIL_PID}]"
        first = self.at(INCIDENT_FETCHMAIL_FIRST[0]) + 700_000
        storm = self.at(INCIDENT_FETCHMAIL_STORM[0]) + 18_600_000
        yield (
            t,
            f"{anvil}: statistics: max connection rate 1/60s for (smtp:127.0.0.1) "
            f"at {ctime15(first, INCIDENT_UTC_OFFSET_S)}",
        )
        yield (
            t,
            f"{anvil}: statistics: max connection count 1 for (smtp:127.0.0.1) "
            f"at {ctime15(storm, INCIDENT_UTC_OFFSET_S)}",
        )
        yield t, f"{anvil}: statistics: max cache size 1 at {ctime15(first, INCIDENT_UTC_OFFSET_S)}"
        hms, pid = INCIDENT_FETCHMAIL_RERUN
        t = self.at(hms) + R.ms(100, 900)
        yield t, f"fetchmail[{pid}]: サーバ証明書検証エラー: self signed certificate"
        t = self.at(INCIDENT_RELOAD) + R.ms(100, 900)
        yield t, f"postfix/master[{INCIDENT_MASTER_PID}]: reload configuration /etc/postfix"
        self.qmgr = f"postfix/qmgr[{self.pids.new(t)}]"
        hms, pid = INCIDENT_POSTSUPER
        t = self.at(hms) + R.ms(100, 900)
        yield t, f"postfix/postsuper[{pid}]: Deleted: {len(self.deferred)} messages"


def generate_incident(out: TextIO) -> int:
    """Write the demo incident log to ``out``; return the number of lines."""
    inc = Incident()
    s = inc.sched
    s.spawn(inc.normal_traffic(inc.at(INCIDENT_TRAFFIC_START)))
    s.spawn(inc.fetchmail_first())
    s.spawn(inc.fetchmail_storm())
    scan1, scan2 = (inc.at(x) for x in INCIDENT_QUEUE_SCANS)
    s.spawn(inc.queue_scan(INCIDENT_QUEUE_SCANS[0], 0, scan1 - 300 * US, first=True))
    s.spawn(
        inc.queue_scan(INCIDENT_QUEUE_SCANS[1], scan1 - 300 * US, scan2 - 300 * US, first=False)
    )
    s.spawn(inc.aftermath())
    return write_steps(out, s.run(), "classic", INCIDENT_HOST, INCIDENT_UTC_OFFSET_S)


# ============================================================================= CLI
def positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {n}")
    return n


def parse_start(text: str) -> datetime:
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--scenario", choices=("mixed", "incident"), default="mixed")
    ap.add_argument("--lines", type=positive, default=100_000, help="lines to write (mixed)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (mixed)")
    ap.add_argument("--format", choices=("classic", "maillog", "rfc3339"), default="classic")
    ap.add_argument(
        "--start",
        type=parse_start,
        default=None,
        help=f"first timestamp, ISO 8601; its UTC offset is the log's zone ({DEFAULT_START})",
    )
    ap.add_argument("--no-storm", action="store_true", help="mixed: leave out the embedded storm")
    ap.add_argument("-o", "--output", default="-", help="output file ('-' = stdout)")
    args = ap.parse_args(argv)
    if args.scenario == "incident" and (args.format != "classic" or args.start is not None):
        ap.error("the incident scenario is fixed: classic format, 2011-10-16 JST")
    began = time.perf_counter()
    out: TextIO
    if args.output == "-":
        try:
            n = _run(args, sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:  # "genlog.py -o - | head": the reader had enough
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    else:
        with Path(args.output).open("w", encoding="utf-8", newline="\n") as out:
            n = _run(args, out)
    elapsed = time.perf_counter() - began
    print(
        f"genlog: {n} lines in {elapsed:.1f} s ({n / max(elapsed, 1e-9):,.0f} lines/s)",
        file=sys.stderr,
    )
    return 0


def _run(args: argparse.Namespace, out: TextIO) -> int:
    if args.scenario == "incident":
        return generate_incident(out)
    return generate_mixed(
        out,
        lines=args.lines,
        seed=args.seed,
        fmt=args.format,
        start=args.start,
        storm=not args.no_storm,
    )


if __name__ == "__main__":
    raise SystemExit(main())
