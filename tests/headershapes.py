"""Postfix log lines in every header format a Postfix host writes, for tests.

Each shape writes a line from a time, a program, a PID and a message, as rsyslog,
journalctl or postlogd would; :func:`life` gives the incident's messages in a shape.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

BASE = datetime(2011, 10, 16, 17, 52, 0, 123456, tzinfo=UTC)
Header = Callable[[datetime, str, str, str], str]  # time, program, pid, message -> line


def _tag(prog: str, pid: str, msg: str) -> str:
    return f"mx {prog}[{pid}]: {msg}"


SHAPES: dict[str, Header] = {
    "classic": lambda d, p, i, m: f"{d:%b} {d.day:2d} {d:%H:%M:%S} {_tag(p, i, m)}",
    "classic-precise": lambda d, p, i, m: f"{d:%b %d %H:%M:%S.%f} {_tag(p, i, m)}",
    "rfc3339": lambda d, p, i, m: f"{d.isoformat()} {_tag(p, i, m)}",
    "rfc3339-z": lambda d, p, i, m: f"{d:%Y-%m-%dT%H:%M:%S}Z {_tag(p, i, m)}",
    "short-iso": lambda d, p, i, m: f"{d:%Y-%m-%dT%H:%M:%S%z} {_tag(p, i, m)}",
    "short-iso-precise": lambda d, p, i, m: f"{d:%Y-%m-%dT%H:%M:%S.%f%z} {_tag(p, i, m)}",
    "rfc3339-space": lambda d, p, i, m: f"{d:%Y-%m-%d %H:%M:%S.%f}+00:00 {_tag(p, i, m)}",
    "year-first": lambda d, p, i, m: f"{d:%Y %b %d %H:%M:%S}.{d:%f}"[:-3] + f" {_tag(p, i, m)}",
    "rfc5424": lambda d, p, i, m: f"<22>1 {d.isoformat()} mx {p} {i} - - {m}",
    "rfc5424-sd-bom": lambda d, p, i, m: (
        f'<22>1 {d.isoformat()} mx {p} {i} - [meta seq="1" x="a\\"]b"][o ip="::1"] \ufeff{m}'
    ),
    "short-full": lambda d, p, i, m: f"{d:%a %Y-%m-%d %H:%M:%S} UTC {_tag(p, i, m)}",
    "short-unix": lambda d, p, i, m: f"{int(d.timestamp())}.{d:%f} {_tag(p, i, m)}",
    "classic-unpadded": lambda d, p, i, m: f"{d:%b} {d.day} {d:%H:%M:%S} {_tag(p, i, m)}",
    "loose-tag": lambda d, p, i, m: f"{d:%b} {d.day:2d} {d:%H:%M:%S} mx {p}[{i}]:   {m}",
    "bare-tag": lambda d, p, i, m: f"{d.isoformat()} mx {p}[{i}] {m}",
}


def life(shape: Header, n: int = 1) -> list[str]:
    """``n`` looping bounces: qmgr from=<>, smtp status=sent to a remote list, removed;
    and a bounce notice; and a line of another program."""
    out = []
    for k in range(n):
        d = BASE + timedelta(seconds=k)
        qid = f"3A4B5C{k:04X}"
        out += [
            shape(d, "postfix/bounce", "2004", f"2B3C4D{k:04X}: sender non-delivery "
                  f"notification: {qid}"),
            shape(d, "postfix/qmgr", "4220", f"{qid}: from=<>, size=3300, nrcpt=1 (queue active)"),
            shape(d, "postfix/smtp", "5494", f"{qid}: to=<list{k}@lists.example.org>, "
                  "relay=mx.example.org[192.0.2.25]:25, delay=0.2, delays=0/0/0.1/0.1, "
                  "dsn=2.0.0, status=sent (250 ok)"),
            shape(d, "postfix/qmgr", "4220", f"{qid}: removed"),
            shape(d, "dovecot", "77", "imap-login: Login: user=<bob>"),
        ]  # fmt: skip
    return out


def tai64n(d: datetime, p: str, i: str, m: str) -> str:
    """daemontools' multilog: a header no format here reads."""
    return f"@4000000058{int(d.timestamp()):08x}00000000 {_tag(p, i, m)}"
