"""The offender of a flood from one origin, as ``contain-offender`` needs it. Pure.

A rule that groups by origin (``sasl-user``, ``uid``, ``client``) and trips names
the group that reached ``trip_at``: the offender. The action that stops it carries
what the queue-ID join knows at that moment: the queue IDs still open from that
origin (their mail may still be queued: it is put on hold) and the domains its
counted mail went to (for the page).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from typing import Protocol

from watcher.core.decide import Action, split_offender
from watcher.core.events import Origin
from watcher.core.origin import origin_key

MAX_QUEUE_IDS = 10_000  # held by ID at the trip; a flood larger than this is frozen
TOP_DOMAINS = 5


class _Keyed(Protocol):
    @property
    def key(self) -> str: ...

    @property
    def domain(self) -> str: ...


class _Open(Protocol):
    def queue_ids_from(self, keep: _Keep, limit: int) -> list[str]: ...


class _Keep(Protocol):
    def __call__(self, origin: Origin, /) -> bool: ...


def queue_ids_of(join: _Open, offender: str) -> list[str]:
    """The open queue IDs the join saw from ``offender`` (``group=key``)."""
    group, key = split_offender(offender)
    if not group:
        return []
    return join.queue_ids_from(lambda o: origin_key(o, group) == key, MAX_QUEUE_IDS)


def with_evidence(action: Action, join: _Open, evidence: Iterable[_Keyed]) -> Action:
    """``action`` (a contain-offender) with its offender's open queue IDs and top domains."""
    _, key = split_offender(action.offender)
    if not key:
        return action
    ids = queue_ids_of(join, action.offender)
    domains = Counter(e.domain for e in evidence if e.key == key)
    top = tuple(f"{d} ({n})" for d, n in domains.most_common(TOP_DOMAINS))
    return replace(action, queue_ids=tuple(ids), domains=top)
