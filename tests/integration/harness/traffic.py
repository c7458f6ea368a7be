"""Legitimate outbound mail beside a storm: local users sending to remote recipients.

``with LegitTraffic(postfix, sink, rate=2) as legit: ...`` submits one message
every ``1/rate`` s by SMTP from ``alice@<domain>`` (and the other users, in
turn) to ``user-N@example.net`` (the relayhost carries it to the sink), each
with a unique ``X-Legit-Id``, from a background thread. :meth:`report` says,
for the messages submitted after a moment (the trip), how many reached the
sink within ``within`` seconds of being submitted: what a trip costs everyone
else.
"""

from __future__ import annotations

import smtplib
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage

from .postfix import PostfixInstance
from .procs import LOOPBACK, Started
from .sink import SmtpSink

USERS = ("alice", "bob", "carol", "dave")


@dataclass(frozen=True, slots=True)
class LegitReport:
    submitted: int  # after the moment asked about (and at least ``within`` before the end)
    delivered: int  # of those, received by the sink within ``within`` seconds
    late: int  # received, but later than that
    missing: int  # not received at all
    refused: int  # submissions Postfix refused (all of them, whenever)

    @property
    def share(self) -> float:
        return self.delivered / self.submitted if self.submitted else 1.0


class LegitTraffic(Started):
    """``logins`` (user -> password): each message is sent by SMTP AUTH as the next of
    these users, in turn, instead of unauthenticated from the local users."""

    def __init__(
        self,
        postfix: PostfixInstance,
        sink: SmtpSink,
        *,
        rate: float = 2.0,
        logins: dict[str, str] | None = None,
    ) -> None:
        self.postfix = postfix
        self.logins = dict(logins or {})
        self.sink = sink
        self.rate = rate
        self.sent: dict[str, float] = {}  # X-Legit-Id -> time.time() when Postfix queued it
        self.refused = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> LegitTraffic:
        self._thread = threading.Thread(target=self._run, name="legit-traffic", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)

    def _run(self) -> None:
        began, n = time.monotonic(), 0
        users = tuple(self.logins) or USERS
        while not self._stop.is_set():
            user = users[n % len(users)]
            ident = f"legit-{n}"
            msg = EmailMessage()
            msg["From"] = f"{user}@{self.postfix.domain}"
            msg["To"] = f"user-{n}@example.net"
            msg["Subject"] = f"ordinary mail {n}"
            msg["X-Legit-Id"] = ident
            msg.set_content("Ordinary mail from a local user, sent during the storm.\n")
            try:
                with smtplib.SMTP(LOOPBACK, self.postfix.smtpd_port, timeout=10) as smtp:
                    if self.logins:
                        smtp.login(user, self.logins[user])
                    smtp.sendmail(msg["From"], [msg["To"]], msg.as_bytes())
                self.sent[ident] = time.time()
            except (smtplib.SMTPException, OSError):
                self.refused += 1
            n += 1
            delay = began + n / self.rate - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)

    def arrivals(self) -> dict[str, float]:
        """X-Legit-Id -> when the sink received it."""
        out: dict[str, float] = {}
        for m in self.sink.messages:
            if m.null_sender:
                continue
            ident = m.message().get("X-Legit-Id")
            if ident:
                out.setdefault(str(ident), m.received_at)
        return out

    def report(
        self, after: float, *, within: float = 15.0, now: float | None = None
    ) -> LegitReport:
        """The messages submitted after ``after`` (wall clock) and at least ``within``
        seconds before ``now``: how many arrived within ``within`` seconds."""
        now = time.time() if now is None else now
        got = self.arrivals()
        asked = {i: t for i, t in dict(self.sent).items() if after <= t <= now - within}
        delivered = sum(1 for i, t in asked.items() if i in got and got[i] - t <= within)
        late = sum(1 for i, t in asked.items() if i in got and got[i] - t > within)
        return LegitReport(len(asked), delivered, late, len(asked) - delivered - late, self.refused)
