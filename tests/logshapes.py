"""Postfix log lines in the shapes Postfix writes them, for tests.

Classic syslog timestamps; ``t`` is seconds after 2011-10-16 17:52:00 UTC
(the seed incident's day), so a test reads as a timeline.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

BASE = datetime(2011, 10, 16, 17, 52, 0, tzinfo=UTC)
REFERENCE = datetime(2011, 10, 17, tzinfo=UTC)
HOST = "mx"


At = float | str  # seconds after BASE, or a timestamp's text as the line shows it


def stamp(t: At) -> str:
    if isinstance(t, str):
        return t
    d = BASE + timedelta(seconds=t)
    return f"{d:%b} {d.day:2d} {d:%H:%M:%S}"


def classic(d: datetime) -> str:
    """An aware datetime as a zone-less classic syslog timestamp, in its own zone."""
    return f"{d:%b} {d.day:2d} {d:%H:%M:%S}"


def micros(t: float) -> int:
    return int((BASE + timedelta(seconds=t)).timestamp() * 1_000_000)


def line(t: At, program: str, msg: str, pid: int = 100) -> str:
    return f"{stamp(t)} {HOST} {program}[{pid}]: {msg}"


def qmgr_from(t: At, qid: str, sender: str) -> str:
    return line(
        t, "postfix/qmgr", f"{qid}: from=<{sender}>, size=5000, nrcpt=1 (queue active)", 4220
    )


def removed(t: At, qid: str) -> str:
    return line(t, "postfix/qmgr", f"{qid}: removed", 4220)


def delivery(
    t: At,
    qid: str,
    to: str,
    *,
    program: str = "postfix/smtp",
    relay: str = "smtp.example.net[192.0.2.25]:587",
    dsn: str = "2.0.0",
    status: str = "sent",
    detail: str = "250 ok",
) -> str:
    return line(
        t,
        program,
        f"{qid}: to=<{to}>, relay={relay}, delay=0.24, delays=0.01/0/0.03/0.21, "
        f"dsn={dsn}, status={status} ({detail})",
        5494,
    )


def loop_bounce(t: float, qid: str, to: str = "user@localhost") -> str:
    return delivery(
        t,
        qid,
        to,
        program="postfix/local",
        relay="local",
        dsn="5.4.6",
        status="bounced",
        detail=f"mail forwarding loop for {to}",
    )


def notice(t: At, qid: str, child: str) -> str:
    return line(t, "postfix/bounce", f"{qid}: sender non-delivery notification: {child}", 5490)


def storm_message(t: float, n: int, list_sender: str) -> list[str]:
    """One fetched list message that loops, bounces, and relays the bounce out."""
    orig, child = f"1{n:09X}", f"2{n:09X}"
    return [
        qmgr_from(t, orig, list_sender),
        loop_bounce(t, orig),
        notice(t, orig, child),
        qmgr_from(t, child, ""),
        removed(t, orig),
        delivery(t + 0.2, child, list_sender),
        removed(t + 0.2, child),
    ]


def ordinary_message(t: float, n: int) -> list[str]:
    qid = f"3{n:09X}"
    return [
        # many users' mail, each from its own client: not one client relaying a flood
        line(t, "postfix/smtpd", f"{qid}: client=unknown[198.51.100.{n % 250 + 1}]", 3000),
        line(t, "postfix/cleanup", f"{qid}: message-id=<{n}@example.com>", 3001),
        qmgr_from(t, qid, f"user{n}@example.com"),
        delivery(t + 0.5, qid, f"rcpt{n}@example.net", relay="mx.example.net[203.0.113.5]:25"),
        removed(t + 0.5, qid),
    ]


def remote_bounce(t: At, n: int, sender: str = "list-bounces@lists.example.org") -> list[str]:
    """A message that a remote host refused; its bounce is relayed out (one backscatter)."""
    orig, child = f"4{n:09X}", f"5{n:09X}"
    return [
        qmgr_from(t, orig, sender),
        delivery(
            t, orig, f"nobody{n}@example.net", relay="mx.example.net[203.0.113.5]:25",
            dsn="5.1.1", status="bounced", detail="host mx.example.net said: 550 5.1.1 no such user",
        ),
        notice(t, orig, child),
        qmgr_from(t, child, ""),
        removed(t, orig),
        delivery(t, child, sender),
        removed(t, child),
    ]  # fmt: skip
