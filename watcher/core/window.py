"""Exact sliding windows over event time. Pure: time is an argument.

A window of length W counts the events whose time ``t`` satisfies
``now - W < t <= now``: an event exactly W old has left the window. Times are
integer microseconds, so the edges are exact. A line logged a little out of
order (several processes writing in the same second) is counted at the
latest time seen, so the deques stay sorted. A step back by more than the
window (a line dated far ahead, then the log's true time) re-bases the window
instead: the counts dated after the new time are forgotten, so they neither
hold slow traffic in the window nor hold the window's clock in the future.
"""

from __future__ import annotations

from collections import deque


class SlidingCounter:
    """Counts events in the last ``length`` microseconds, per group key.

    Memory is bounded: each group keeps at most ``cap`` timestamps (the
    count saturates at ``cap``, which is set above every threshold that is
    compared with it), and at most ``max_groups`` groups are kept — the group
    idle longest is dropped first.
    """

    __slots__ = ("_groups", "_latest", "cap", "length", "max_groups")

    def __init__(self, length: int, *, cap: int = 100_000, max_groups: int = 10_000) -> None:
        if length <= 0:
            raise ValueError("window length must be positive")
        self.length = length
        self.cap = cap
        self.max_groups = max_groups
        self._groups: dict[str, deque[int]] = {}
        self._latest = 0

    def add(self, time: int, key: str = "") -> int:
        """Count one event at ``time`` in group ``key``; return the group's count."""
        if time >= self._latest:
            self._latest = time
        elif self._latest - time > self.length:
            self._rebase(time)
        else:
            time = self._latest
        groups = self._groups
        q = groups.pop(key, None)
        if q is None:
            q = deque(maxlen=self.cap)
            if len(groups) >= self.max_groups:
                del groups[next(iter(groups))]
        groups[key] = q  # most recently used last
        q.append(time)
        horizon = time - self.length
        while q[0] <= horizon:
            q.popleft()
        return len(q)

    def _rebase(self, time: int) -> None:
        """Time went back beyond the window: forget what is dated after ``time``."""
        self._latest = time
        for key, q in list(self._groups.items()):
            while q and q[-1] > time:
                q.pop()
            if not q:
                del self._groups[key]

    def count(self, now: int, key: str = "") -> int:
        """How many events of group ``key`` are in the window ending at ``now``."""
        q = self._groups.get(key)
        if q is None:
            return 0
        horizon = now - self.length
        return sum(1 for t in q if horizon < t <= now)

    def max_count(self, now: int) -> int:
        """The largest group's count in the window ending at ``now``."""
        return max((self.count(now, key) for key in self._groups), default=0)

    def first(self, key: str = "") -> int | None:
        """Time of the oldest event still held for ``key``."""
        q = self._groups.get(key)
        return q[0] if q else None
