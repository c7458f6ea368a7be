"""What a live source hands to the pipeline, and the protocol every source follows.

A source yields *items*: a :class:`TextLine` (a line of a log file, to be
parsed as text) or a :class:`JournalRecord` (a journal entry, whose fields are
already split). Every item carries an opaque ``position``; once the pipeline has
dealt with an item (and every item before it), it hands that position back to
:meth:`Source.commit`, which persists it. After a restart the source resumes
after the last committed position: delivery is at-least-once, and exactly-once
when the consumer commits the last position of every batch it handled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class TextLine:
    """One complete line of a file, newline stripped.

    ``text`` is decoded as UTF-8 with ``errors="replace"``; a line longer than
    the source's limit is cut to the limit. ``position`` is opaque: give it back
    to :meth:`Source.commit`.
    """

    text: str
    position: object


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One journal entry, its fields taken as they are (no text round trip).

    ``time`` is ``__REALTIME_TIMESTAMP`` (microseconds since the epoch, UTC),
    ``host`` ``_HOSTNAME``, ``program`` ``SYSLOG_IDENTIFIER`` (``postfix/smtp``),
    ``pid`` ``_PID`` (``SYSLOG_PID`` if absent, else 0), ``message``
    ``MESSAGE`` decoded as UTF-8 with replacement. ``position`` is the
    journal cursor (a ``str``), opaque to the consumer.
    """

    time: int
    host: str
    program: str
    pid: int
    message: str
    position: object


Item = TextLine | JournalRecord


class Source(Protocol):
    """A live source of log items.

    ``open``, ``poll`` and ``close`` are called from one thread (the source's
    reader thread); ``commit`` and ``counters`` may be called from another.
    Constructors do no I/O: everything that touches the system happens in
    ``open``.
    """

    name: str

    def open(self) -> None:
        """Start following; resume from the persisted position if there is one."""
        ...

    def poll(self, timeout: float) -> list[Item]:
        """Return new items, waiting at most ``timeout`` seconds if there are none yet."""
        ...

    def commit(self, position: object) -> None:
        """Persist ``position`` atomically: every item up to it went through the pipeline."""
        ...

    def close(self) -> None:
        """Stop following and release every resource (idempotent)."""
        ...

    def counters(self) -> dict[str, int]:
        """Monotonic counters (lines read, rotations, restarts, ...) for status output."""
        ...
