"""Mailing-list-shaped messages, the kind that fed the incident's storm."""

from __future__ import annotations

import email.utils
import itertools
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY  # CRLF line ends, as SMTP and POP3 carry them

_serial = itertools.count(1)


@dataclass(frozen=True, slots=True)
class MailingList:
    """A list whose posts carry its bounce address: where backscatter goes."""

    address: str = "announce@lists.example.org"
    bounce_address: str = "list-bounces@lists.example.org"
    list_id: str = "<announce.lists.example.org>"
    name: str = "Example announcements"

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]

    def message(self, index: int, *, to: str | None = None, body: str = "") -> EmailMessage:
        """Post number ``index``: From the list, Sender/Return-Path its bounce address."""
        msg = EmailMessage()
        msg["Return-Path"] = f"<{self.bounce_address}>"
        msg["From"] = f"{self.name} <{self.address}>"
        msg["Sender"] = self.bounce_address
        msg["To"] = to or self.address
        msg["Subject"] = f"[announce] post {index}"
        msg["Date"] = email.utils.format_datetime(datetime.now(tz=UTC))
        msg["Message-ID"] = f"<post-{index}.{os.getpid()}.{next(_serial)}@{self.domain}>"
        msg["List-Id"] = f"{self.name} {self.list_id}"
        msg["List-Unsubscribe"] = f"<mailto:{self.address.replace('@', '-leave@')}>"
        msg["Precedence"] = "list"
        msg.set_content(body or f"Post {index} to {self.address}.\n")
        return msg

    def message_bytes(self, index: int, *, to: str | None = None, crlf: bool = False) -> bytes:
        """The same post as bytes: LF line ends (a Maildir file), or CRLF (the wire)."""
        message = self.message(index, to=to)
        return message.as_bytes(policy=SMTP_POLICY) if crlf else message.as_bytes()


DEFAULT_LIST = MailingList()


def paced(count: int, per_second: float, *, start: int = 1) -> Iterator[int]:
    """Yield ``count`` indices from ``start`` at ``per_second`` (a storm's arrival rate).

    Each index is yielded at its slot on a fixed schedule (start + n / per_second), so a
    slow consumer does not stretch the storm; it never yields early.
    """
    began = time.monotonic()
    for n in range(count):
        delay = began + n / per_second - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield start + n
