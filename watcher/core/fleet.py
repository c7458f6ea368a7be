"""Shared windows across a fleet of watchers: what a host adds, how the counts combine. Pure.

A rule with ``shared = true`` counts its window on this host as always, and
also across every watcher with the same ``[fleet]`` settings. The store
(Redis, :mod:`watcher.fleet.store`) keeps per rule and group key one sorted
set per host: each member is a counted line's identity (:func:`event_id`),
its score the line's log time in microseconds. Adding a member twice adds
nothing, so a line read again (a lost checkpoint, a replayed file, a batch
sent again after an outage) is counted once. The fleet's window ends at the
latest log time any host reported for that group, and each host's share is
its members in ``(latest - window, latest]``.

Nothing here does I/O: the identity, the grouping of a batch, what a host
keeps to send again after an outage (:class:`Retained`) and the wording of
the shares are plain functions of their arguments.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MEMBER_BYTES = 10  # 80 bits of a line's hash: no collision among a window's lines

GroupId = tuple[str, str]  # (rule name, group key)
Shares = tuple[tuple[str, int], ...]  # (host, count), largest first


def event_id(source: str, line: str) -> str:
    """A counted line's identity on its host: the source's name and a hash of the line.

    The line carries its time, program, PID, queue ID and recipient, so two
    different deliveries differ, and the same line read twice is the same
    member. The host is not part of it: each host has its own sorted set.
    """
    digest = hashlib.blake2b(f"{source}\n{line}".encode(), digest_size=MEMBER_BYTES)
    return digest.hexdigest()


def store_key(fleet: str, rule: str, key: str) -> str:
    """The Redis key prefix of one rule's group in one fleet. The group key (an address,
    a domain: text from the log) is hashed, so it cannot shape the key."""
    group = hashlib.blake2b(key.encode(), digest_size=8).hexdigest() if key else "-"
    return f"stormwatch:{fleet}:{rule}:{group}"


@dataclass(frozen=True, slots=True)
class Shared:
    """One match of a shared rule, as this host adds it to the fleet's window."""

    rule: str
    key: str
    window: int  # the rule's window, microseconds
    time: int  # log time, microseconds
    member: str  # :func:`event_id`

    @property
    def group(self) -> GroupId:
        return (self.rule, self.key)


@dataclass(frozen=True, slots=True)
class Batch:
    """One group's part of a batch: its window and the ``(time, member)`` pairs to add
    (none: only read the counts)."""

    rule: str
    key: str
    window: int
    items: tuple[tuple[int, str], ...]


@dataclass(frozen=True, slots=True)
class FleetCount:
    """The fleet's window of one group after a batch: where it ends and each host's share."""

    rule: str
    key: str
    now: int  # the latest log time any host reported for this group
    shares: Shares

    @property
    def total(self) -> int:
        return sum(n for _, n in self.shares)

    @property
    def group(self) -> GroupId:
        return (self.rule, self.key)


def batches(events: Iterable[Shared]) -> list[Batch]:
    """Group matches by rule and key, in the order each group first appears."""
    out: dict[GroupId, tuple[int, list[tuple[int, str]]]] = {}
    for ev in events:
        entry = out.get(ev.group)
        if entry is None:
            entry = out[ev.group] = (ev.window, [])
        entry[1].append((ev.time, ev.member))
    return [Batch(rule, key, w, tuple(items)) for (rule, key), (w, items) in out.items()]


def combine(pairs: Iterable[tuple[str, int]]) -> Shares:
    """Hosts' counts as shares: hosts with nothing in the window left out, largest first
    (ties by name, so the wording is stable)."""
    merged: dict[str, int] = {}
    for host, n in pairs:
        if n > 0:
            merged[host] = merged.get(host, 0) + n
    return tuple(sorted(merged.items(), key=lambda kv: (-kv[1], kv[0])))


def shares_text(shares: Shares) -> str:
    """``"12 on 2 hosts: mx1 7, mx2 5"``."""
    total = sum(n for _, n in shares)
    hosts = "host" if len(shares) == 1 else "hosts"
    each = ", ".join(f"{host} {n}" for host, n in shares)
    return f"{total} on {len(shares)} {hosts}: {each}"


class Retained:
    """This host's own shared matches still within two windows of its latest log time, per
    group: what it sends again after an outage (Redis may have lost them, or never got
    them), so the fleet's windows are whole again once Redis is back.

    Bounded: at most ``cap`` matches per group (the oldest go first) and ``max_groups``
    groups (the one idle longest goes first).
    """

    __slots__ = ("_groups", "cap", "max_groups")

    def __init__(self, *, cap: int = 20_000, max_groups: int = 10_000) -> None:
        self.cap = cap
        self.max_groups = max_groups
        self._groups: dict[GroupId, deque[Shared]] = {}

    def add(self, ev: Shared) -> None:
        groups = self._groups
        q = groups.pop(ev.group, None)
        if q is None:
            q = deque(maxlen=self.cap)
            if len(groups) >= self.max_groups:
                del groups[next(iter(groups))]
        groups[ev.group] = q  # most recently used last
        q.append(ev)
        horizon = max(ev.time, q[0].time) - 2 * ev.window
        while q and q[0].time <= horizon:
            q.popleft()

    def groups(self) -> list[Batch]:
        """An empty batch per group held: reading the fleet's counts, adding nothing."""
        return [Batch(rule, key, q[-1].window, ()) for (rule, key), q in self._groups.items() if q]

    def everything(self) -> list[Shared]:
        return [ev for q in self._groups.values() for ev in q]

    def __len__(self) -> int:
        return sum(len(q) for q in self._groups.values())


def with_idle(sent: Sequence[Batch], held: Sequence[Batch]) -> list[Batch]:
    """``sent``, then a count-only batch for each held group not in it."""
    seen = {(b.rule, b.key) for b in sent}
    return [*sent, *(b for b in held if (b.rule, b.key) not in seen)]
