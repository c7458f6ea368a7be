"""Join Postfix's lines by queue ID. Pure: time comes from the events.

Every delivery learns its envelope sender (from qmgr's ``from=<..>``) and
every bounce notification learns the message it was made from. A queue ID is
forgotten at ``removed`` (short IDs are reused), when it has been idle longer
than ``ttl`` (by log time), or — oldest first, counted — when more than
``max_open`` are open at once. Expiry waits for two events in a row past the
sweep time: one line dated weeks ahead (a clock set wrong, a forged line) must
not expire every message in flight.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from watcher.core.events import (
    MICROS,
    AnyEvent,
    BounceNotice,
    Delivery,
    Origin,
    QueueSender,
    Removed,
    Submitted,
)

UNKNOWN: None = None


# An open queue ID: (sender, parent, last, origin). ``sender`` is None when not seen
# (a lost line, or the watcher started mid-stream); ``parent`` is the queue
# ID of the message this one is a bounce of ("" if none); ``last`` the event
# time of the last activity; ``origin`` smtpd's client / pickup's uid (None: not
# seen, or no rule needs it). Plain tuples: this table is on the hot path.
_Open = tuple[str | None, str, int, Origin | None]


@dataclass(frozen=True, slots=True)
class Fact:
    """An event with what the join knows about its message.

    ``sender`` is the envelope sender ("" = null sender, None = unknown).
    For a :class:`BounceNotice` it is the *original* message's sender — the
    address the notification is about to be sent to. ``parent`` is the
    message a bounce was made from ("" if not a bounce, or not known).
    ``origin`` is where the message came from (for a bounce notice: the original
    message's), None when not known.
    """

    event: Delivery | BounceNotice
    sender: str | None
    parent: str
    origin: Origin | None = None


@dataclass(slots=True)
class CorrelateStats:
    open_peak: int = 0
    evicted: int = 0
    expired: int = 0
    unknown_sender: int = 0


class Correlator:
    """Bounded queue-ID table, ordered by last activity."""

    def __init__(self, *, max_open: int = 50_000, ttl_seconds: float = 86_400.0) -> None:
        if max_open < 1:
            raise ValueError("max_open must be at least 1")
        self.max_open = max_open
        self.ttl = int(ttl_seconds * MICROS)
        self.stats = CorrelateStats()
        self._open: dict[str, _Open] = {}
        self._next_sweep = 0
        self._sweep_every = min(self.ttl, 60 * MICROS)
        self._sweep_due = False  # the previous event was past _next_sweep

    def __len__(self) -> int:
        return len(self._open)

    def feed(self, ev: AnyEvent) -> Fact | None:
        """Record ``ev``; return a :class:`Fact` for deliveries and bounce notices."""
        table = self._open
        self._maybe_sweep(ev.time)
        if isinstance(ev, Delivery):
            entry = table.get(ev.qid)
            if entry is None or entry[0] is None:
                self.stats.unknown_sender += 1
            if entry is None:
                return Fact(ev, UNKNOWN, "")
            return Fact(ev, entry[0], entry[1], entry[3])
        if isinstance(ev, QueueSender):
            self.note_sender(ev.qid, ev.sender, ev.time)
            return None
        if isinstance(ev, Submitted):
            self.note_origin(ev.qid, ev.origin, ev.time)
            return None
        if isinstance(ev, Removed):
            table.pop(ev.qid, None)
            return None
        if isinstance(ev, BounceNotice):
            parent = table.get(ev.qid)
            had_child = table.pop(ev.child_qid, None) is not None
            table[ev.child_qid] = ("", ev.qid, ev.time, None)  # a notification: null sender
            if not had_child:
                self._grew()
            if parent is None:
                return Fact(ev, None, ev.qid)
            return Fact(ev, parent[0], ev.qid, parent[3])
        return None

    def note_sender(self, qid: str, sender: str, time: int) -> None:
        """qmgr's ``from=<sender>``: the message entered the active queue."""
        self._maybe_sweep(time)
        table = self._open
        old = table.pop(qid, None)
        if old is None:
            table[qid] = (sender, "", time, None)
            self._grew()
        else:
            table[qid] = (sender, old[1], time, old[3])

    def note_origin(self, qid: str, origin: Origin, time: int) -> None:
        """smtpd's ``client=`` / pickup's ``uid=``: the message was queued, from ``origin``.

        Comes before qmgr's ``from=<..>``: a queue ID seen again here is a new message
        (a short ID reused), so what was known of the old one goes.
        """
        self._maybe_sweep(time)
        table = self._open
        had = table.pop(qid, None) is not None
        table[qid] = (None, "", time, origin)
        if not had:
            self._grew()

    def forget(self, qid: str) -> None:
        """qmgr's ``removed``: the queue ID may be reused from now on."""
        self._open.pop(qid, None)

    def inherit(self, child: str, parent: str) -> None:
        """A content filter re-injected ``parent`` as ``child``: ``child`` came from where
        ``parent`` came from (its own ``client=`` line names the filter, on localhost)."""
        source = self._open.get(parent)
        if source is None or source[3] is None:
            return
        entry = self._open.get(child)
        if entry is None:
            self._open[child] = (None, "", source[2], source[3])
            self._grew()
        else:
            self._open[child] = (entry[0], entry[1], entry[2], source[3])

    def sender_of(self, qid: str) -> str | None:
        entry = self._open.get(qid)
        return None if entry is None else entry[0]

    def queue_ids_from(self, keep: Callable[[Origin], bool], limit: int) -> list[str]:
        """Open queue IDs whose origin ``keep`` accepts (at most ``limit``, newest kept)."""
        found = [q for q, e in self._open.items() if e[3] is not None and keep(e[3])]
        return found[-limit:]

    def origin_of(self, qid: str) -> Origin | None:
        entry = self._open.get(qid)
        return None if entry is None else entry[3]

    def _grew(self) -> None:
        table = self._open
        n = len(table)
        if n > self.max_open:
            del table[next(iter(table))]
            self.stats.evicted += 1
        elif n > self.stats.open_peak:
            self.stats.open_peak = n

    def _maybe_sweep(self, now: int) -> None:
        if now < self._next_sweep:
            self._sweep_due = False
        elif self._sweep_due:
            self._sweep_due = False
            self._sweep(now)
        else:
            self._sweep_due = True  # sweep at the next event, if it is past the time too

    def _sweep(self, now: int) -> None:
        self._next_sweep = now + self._sweep_every
        horizon = now - self.ttl
        table = self._open
        stale = []
        for qid, entry in table.items():
            if entry[2] >= horizon:
                break
            stale.append(qid)
        for qid in stale:
            del table[qid]
        self.stats.expired += len(stale)
