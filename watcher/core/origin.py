"""Where a message came from: smtpd's ``client=`` and pickup's ``uid=`` lines. Pure.

Postfix logs a message's origin once, when it is queued:

* smtpd (and qmqpd): ``QID: client=host[ip][:port][, sasl_method=M, sasl_username=U]``
  (the port is ``unknown`` when smtpd was not told it, e.g. through XCLIENT)
  ``[, sasl_sender=S][, orig_queue_id=Q, orig_client=C]``;
* pickup (``sendmail(1)``, ``postdrop``): ``QID: uid=N from=<sender>``.

The queue-ID join (:mod:`watcher.core.correlate`) carries it to every delivery of
the message, so rules may count per SASL user, client or uid. The block scanner
keeps only the origins some rule needs (:class:`OriginWants`), judged by
:func:`origin_kind` on the text alone, the same way :func:`parse_origin` judges it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from watcher.core.events import Origin

ORIGIN_KINDS = ("sasl", "pickup", "client", "loopback")

# Everything smtpd may log after the SASL user (smtpd.c: sasl_sender, then the XFORWARD
# originals): the user runs to the first of these, or to the end of the line.
_CLIENT_RE = re.compile(
    r"client=(?P<host>[^\[\], ]*)\[(?P<ip>[^\]\s]*)\](?::(?:\d+|unknown))?"
    r"(?:, sasl_method=(?P<method>[^,\s]*))?"
    r"(?:, sasl_username=(?P<user>.*?))?"
    r"(?:, (?:sasl_sender|orig_queue_id|orig_client)=.*)?$"
)
_PICKUP_RE = re.compile(r"uid=(?P<uid>\d{1,10}) from=<(?P<from>.*)>$")
SASL_MARK = ", sasl_username="


def is_loopback(ip: str) -> bool:
    """127.0.0.0/8, ::1 and IPv4-mapped 127/8: a client on this host."""
    return ip.startswith(("127.", "::ffff:127.")) or ip == "::1"


def origin_kind(body: str) -> str:
    """The kind of origin a ``client=``/``uid=`` message part names ("" if neither).

    Cheap, for the block scanner; agrees with :func:`parse_origin`'s ``kind`` on every
    line that parses.
    """
    if body.startswith("uid="):
        return "pickup"
    if not body.startswith("client="):
        return ""
    if SASL_MARK in body:
        return "sasl"
    lb = body.find("[")
    rb = body.find("]", lb + 1)
    return "loopback" if lb >= 0 and rb > lb and is_loopback(body[lb + 1 : rb]) else "client"


def parse_origin(body: str) -> Origin | None:
    """The origin in the message part after ``QID: `` (None if malformed)."""
    if body.startswith("uid="):
        m = _PICKUP_RE.match(body)
        if m is None:
            return None
        return Origin("pickup", uid=int(m["uid"]), sender=m["from"])
    m = _CLIENT_RE.match(body)
    if m is None:
        return None
    ip = m["ip"]
    user = m["user"]
    kind = "sasl" if user is not None else "loopback" if is_loopback(ip) else "client"
    return Origin(kind, m["host"], ip, m["method"] or "", user or "")


def program_logs_origin(agent: str, body: str) -> bool:
    """Does the program (last part of the syslog tag) log this kind of origin line?"""
    if body.startswith("uid="):
        return agent == "pickup"
    return agent in ("smtpd", "qmqpd")


@dataclass(frozen=True, slots=True)
class OriginWants:
    """What the rules need of origins, for the block scanner.

    ``kinds``: the origin kinds some rule counts or groups by (empty: none, and the
    scanner passes no origin on). ``agents``: the delivery programs those rules count
    (None: any); a delivery of a message with a wanted origin by another program is
    left out like ordinary mail, and so is one to ``skip_relays`` (content filters, when
    every such rule counts remote relays only). ``hop_relays``: a message handed to one
    of these (status sent, ``queued as NEWQID``) passes its origin on to NEWQID: a content
    filter re-injects it from localhost, and the origin would be lost at the hop.
    """

    kinds: frozenset[str] = frozenset()
    agents: frozenset[str] | None = None
    skip_relays: tuple[str, ...] = ()  # "[ip]:port," of relays none of those rules counts
    hop_relays: tuple[str, ...] = ()  # "[ip]:port," of content filters: the origin hops on


NO_ORIGINS = OriginWants()
ALL_ORIGINS = OriginWants(frozenset(ORIGIN_KINDS))


# A content filter's answer once it has re-injected the message: amavisd's "250 2.0.0
# from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as NEWQID" (the detail's ")"
# may be there or not).
_QUEUED_AS_RE = re.compile(r"queued as ([0-9A-Za-z]{6,38})\)?$")


def queued_as(text: str) -> str:
    """The queue ID a content filter's reply says the message was re-injected as ("")."""
    m = _QUEUED_AS_RE.search(text)
    return m[1] if m is not None else ""


def relay_markers(entries: tuple[str, ...]) -> tuple[str, ...]:
    """``[ip]:port,`` as a delivery line shows the relay, for ``ip:port`` and
    ``[ip6]:port`` entries (others give none: the per-line judgement stays)."""
    out = []
    for e in entries:
        if e.startswith("["):
            if "]:" in e:
                out.append(e + ",")
        elif e.count(":") == 1 and e.partition(":")[2].isdigit():
            ip, _, port = e.partition(":")
            out.append(f"[{ip}]:{port},")
    return tuple(out)


def origin_key(origin: Origin | None, group: str) -> str:
    """A rule's group key for ``group_by`` sasl-user / client / uid ("" if none)."""
    if origin is None:
        return ""
    if group == "sasl-user":
        return origin.sasl_user
    if group == "client":
        return origin.client_ip
    return str(origin.uid) if origin.uid >= 0 else ""


def describe(origin: Origin | None) -> str:
    """One line for reports: ``sasl alice (client laptop[192.0.2.7])``, ``uid 33``..."""
    if origin is None:
        return "?"
    if origin.kind == "pickup":
        return f"uid {origin.uid} <{origin.sender}>"
    client = f"{origin.client_host}[{origin.client_ip}]"
    if origin.kind == "sasl":
        return f"sasl {origin.sasl_user} from {client}"
    return f"client {client}"
