"""Typed events: what one Postfix log line means, once parsed.

Every event is a frozen, slotted dataclass. Times are integers: microseconds
since the Unix epoch, UTC, taken from the log line itself (never the wall
clock), so windows are exact and a replay gives the same answer as live.
"""

from __future__ import annotations

from dataclasses import dataclass

MICROS = 1_000_000


@dataclass(frozen=True, slots=True)
class Event:
    """Fields every Postfix event carries.

    ``program`` is the syslog identifier as logged (``postfix/smtp``,
    ``postfix-out/smtp``, ``postfix/relay/smtp``); ``qid`` the queue ID the
    line is about ("" for lines that have none).
    """

    time: int
    host: str
    program: str
    pid: int
    qid: str


@dataclass(frozen=True, slots=True)
class QueueSender(Event):
    """qmgr ``QID: from=<sender>, size=N, nrcpt=N (queue active)``.

    ``sender`` is "" for the null sender (bounces, ``from=<>``).
    """

    sender: str
    size: int
    nrcpt: int


@dataclass(frozen=True, slots=True)
class Delivery(Event):
    """A delivery attempt: ``QID: to=<..>, [orig_to=<..>,] relay=.., dsn=.., status=..``.

    ``agent`` is the delivery program (``smtp``, ``lmtp``, ``local``, ...),
    ``transport`` the master.cf service that ran it (``relay`` for
    ``postfix/relay/smtp``; the agent's name otherwise). ``relay`` is the raw
    relay field (``host[ip]:port``, ``local``, ``none``); ``relay_host``,
    ``relay_ip`` and ``relay_port`` its parts ("" / 0 where absent).
    ``status`` is lower-cased (``sent``, ``deferred``, ``bounced``,
    ``softbounce``, ``expired``, ...); ``detail`` the text in parentheses.
    """

    agent: str
    transport: str
    recipient: str
    orig_recipient: str
    relay: str
    relay_host: str
    relay_ip: str
    relay_port: int
    dsn: str
    status: str
    detail: str


@dataclass(frozen=True, slots=True)
class ForwardingLoop(Delivery):
    """A delivery that bounced with ``mail forwarding loop for ADDRESS``."""

    loop_address: str


@dataclass(frozen=True, slots=True)
class BounceNotice(Event):
    """bounce ``QID: sender non-delivery notification: NEWQID``.

    ``qid`` is the original message, ``child_qid`` the notification Postfix
    just queued (with the null sender). ``notice`` is the kind as logged:
    ``sender non-delivery``, ``postmaster non-delivery``, ``sender delay``,
    ``sender delivery status``, ``postmaster delay``.
    """

    notice: str
    child_qid: str


@dataclass(frozen=True, slots=True)
class Removed(Event):
    """qmgr ``QID: removed``: the queue ID may now be reused."""


@dataclass(frozen=True, slots=True)
class LogLoss(Event):
    """The syslog daemon or journald dropped lines (rate limiting).

    While these appear the watcher is partly blind. ``lost`` is the number
    of lines reported lost (0 when the message does not say).
    """

    lost: int
    daemon: str


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a message came from, as smtpd or pickup logged it when it was queued.

    ``kind`` is ``sasl`` (an authenticated SMTP client), ``pickup`` (``sendmail(1)``,
    by ``uid``), ``client`` (a network client without SASL) or ``loopback`` (a
    client on 127.0.0.0/8 or ::1 without SASL: content filters re-injecting, local
    web applications). ``client_host``/``client_ip`` are "" for pickup; ``uid`` is
    -1 for smtpd; ``sender`` is pickup's ``from=<..>`` ("" for smtpd).
    """

    kind: str
    client_host: str = ""
    client_ip: str = ""
    sasl_method: str = ""
    sasl_user: str = ""
    uid: int = -1
    sender: str = ""


@dataclass(frozen=True, slots=True)
class Submitted(Event):
    """smtpd ``QID: client=host[ip][, sasl_method=M, sasl_username=U]`` or pickup
    ``QID: uid=N from=<sender>``: a message entered the queue, from ``origin``."""

    origin: Origin


AnyEvent = QueueSender | Delivery | BounceNotice | Removed | LogLoss | Submitted
