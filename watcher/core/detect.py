"""Rules x sliding windows over event time. Pure.

Each rule's ``[match]`` table is compiled once into a predicate over a
:class:`~watcher.correlate.Fact`; a fact a rule selects is added to the
rule's window (per group key) and reported as a :class:`Hit` with the
window's count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from watcher.core.correlate import Fact
from watcher.core.destinations import LocalDomains
from watcher.core.events import MICROS, BounceNotice, Delivery, ForwardingLoop, Origin
from watcher.core.origin import ORIGIN_KINDS, OriginWants, origin_key, relay_markers
from watcher.core.rules import ORIGIN_GROUPS, Match, Rule
from watcher.core.settings import DEFAULT_CONTENT_FILTERS
from watcher.core.window import SlidingCounter

Predicate = Callable[[Fact], bool]


@dataclass(frozen=True, slots=True)
class Hit:
    """A fact a rule counted, with the rule's window count after it."""

    rule: Rule
    fact: Fact
    count: int
    key: str


def recipient_domain(address: str) -> str:
    """The part after the last ``@``, lower-cased ("" for a bare local part)."""
    at = address.rfind("@")
    return address[at + 1 :].lower() if at >= 0 else ""


def _relay_matches(d: Delivery, entries: frozenset[str]) -> bool:
    """Is ``d``'s relay one of ``entries`` ('ip:port', '[ip6]:port', 'host:port', 'ip')?"""
    if not entries or not d.relay_ip:
        return False
    port = str(d.relay_port)
    return (
        d.relay_ip in entries
        or f"{d.relay_ip}:{port}" in entries
        or f"[{d.relay_ip}]:{port}" in entries
        or f"{d.relay_host}:{port}".lower() in entries
    )


def compile_match(
    m: Match, content_filters: Iterable[str], local: LocalDomains | None = None
) -> Predicate:
    """One predicate for one rule's ``[match]`` table (``local``: for ``destination``)."""
    agents = frozenset(m.agents) if m.agents is not None else None
    transports = frozenset(m.transports) if m.transports is not None else None
    statuses = frozenset(s.lower() for s in m.statuses) if m.statuses is not None else None
    notices = frozenset(m.notices) if m.notices is not None else None
    excluded = frozenset(e.lower() for e in m.exclude_relays)
    if m.remote:
        excluded |= frozenset(e.lower() for e in content_filters)
    sender = m.sender
    origin = m.origin
    not_local = local if m.destination == "not-local" else None
    want: type[Delivery] | type[BounceNotice] = {
        "delivery": Delivery,
        "forwarding-loop": ForwardingLoop,
        "bounce-notice": BounceNotice,
    }[m.event]

    def predicate(f: Fact) -> bool:
        ev = f.event
        if not isinstance(ev, want):
            return False
        if origin != "any" and (f.origin is None or f.origin.kind != origin):
            return False
        if sender == "null" and f.sender != "":
            return False
        if sender == "non-null" and (f.sender is None or f.sender == ""):
            return False
        if isinstance(ev, BounceNotice):
            if not_local is not None and not_local.is_local(f.sender):
                return False  # the bounce goes to a mailbox here
            return notices is None or ev.notice in notices
        if agents is not None and ev.agent not in agents:
            return False
        if transports is not None and ev.transport not in transports:
            return False
        if statuses is not None and ev.status not in statuses:
            return False
        if m.remote and (not ev.relay_ip or "/" in ev.relay_ip):
            return False  # relay=local/none/virtual..., or a unix socket
        return not _relay_matches(ev, excluded)

    return predicate


def _group_key(rule: Rule, f: Fact) -> str:
    g = rule.window.group_by
    if g == "none":
        return ""
    ev = f.event
    if g == "sender":
        return f.sender or ""
    if g in ORIGIN_GROUPS:
        return origin_key(f.origin, g)
    if isinstance(ev, BounceNotice):
        # a notification goes to the original sender
        return recipient_domain(f.sender or "") if g == "recipient-domain" else (f.sender or "")
    if g == "recipient-domain":
        return recipient_domain(ev.recipient)
    if g == "recipient":
        return ev.recipient.lower()
    if g == "relay":
        return ev.relay_host.lower()
    return ev.transport


def _origin_wants(
    rules: Sequence[Rule], content_filters: tuple[str, ...]
) -> tuple[OriginWants, frozenset[str]]:
    """What the block scanner must keep of origins, and the origin kinds whose
    deliveries some rule counts (rules with ``match.origin``)."""
    by_origin = [r for r in rules if r.match.event == "delivery" and r.match.origin != "any"]
    counted = frozenset(r.match.origin for r in by_origin)
    kinds: set[str] = set(counted)
    if any(r.window.group_by in ORIGIN_GROUPS and r.match.origin == "any" for r in rules):
        kinds |= set(ORIGIN_KINDS)  # the group key needs every message's origin
    agents: frozenset[str] | None = frozenset()
    for r in by_origin:
        if r.match.agents is None:
            agents = None
            break
        assert agents is not None
        agents |= frozenset(r.match.agents)
    remote_only = bool(by_origin) and all(r.match.remote for r in by_origin)
    skip = relay_markers(content_filters) if remote_only else ()
    hops = relay_markers(content_filters) if kinds else ()
    return OriginWants(frozenset(kinds), agents, skip, hops), counted


def _senders_wanted(rules: Iterable[Rule]) -> frozenset[str]:
    """Sender classes ('null', 'non-null', 'unknown') some of ``rules`` count."""
    out: set[str] = set()
    for r in rules:
        if r.match.sender == "any":
            out |= {"null", "non-null", "unknown"}
        else:
            out.add(r.match.sender)
    return frozenset(out)


class Detector:
    """Feeds facts to every rule; returns the hits."""

    def __init__(
        self,
        rules: Sequence[Rule],
        *,
        content_filters: Iterable[str] = DEFAULT_CONTENT_FILTERS,
        local_domains: Iterable[str] = (),
    ) -> None:
        filters = tuple(content_filters)
        self.content_filters = filters
        self.local = LocalDomains(local_domains)
        self.rules = tuple(rules)
        self._compiled: list[tuple[Rule, Predicate, SlidingCounter]] = [
            (
                r,
                compile_match(r.match, filters, self.local),
                SlidingCounter(
                    int(r.window.seconds * MICROS),
                    cap=max(r.trip_at or 0, r.warn_at or 0, 1) * 4 + 1000,
                ),
            )
            for r in self.rules
        ]

        # a step back in log time beyond this re-bases at least one window
        self.shortest_window = min(
            (counter.length for _, _, counter in self._compiled), default=60 * MICROS
        )
        # null-sender deliveries always: the escalation ladder watches them (watcher.core.ladder)
        # a rule that counts by origin asks for deliveries by origin (origin_wants), not
        # by sender: ordinary mail of other origins stays on the fast path
        self._want_any = _senders_wanted(
            r for r in self.rules if r.match.event == "delivery" and r.match.origin == "any"
        ) | {"null"}
        self.origin_wants, self._want_origin = _origin_wants(self.rules, filters)
        self._want_loop = _senders_wanted(
            r for r in self.rules if r.match.event == "forwarding-loop"
        )
        self.wants_loops = bool(self._want_loop)
        # no rule counts deliveries of mail with a known, non-null sender
        self.collapsible = "non-null" not in self._want_any and "unknown" not in self._want_any

    def adopt_windows(self, old: Detector) -> None:
        """After a reload: keep the counts of rules whose window did not change, and
        the local domains the log taught."""
        self.local.adopt(old.local)
        before = {r.name: (r.window, counter) for r, _, counter in old._compiled}
        for i, (rule, pred, _) in enumerate(self._compiled):
            kept = before.get(rule.name)
            if kept is not None and kept[0] == rule.window:
                self._compiled[i] = (rule, pred, kept[1])

    def window_counts(self, now: int) -> dict[str, int]:
        """Per rule, its window's count at ``now`` (for grouped rules: the largest group's)."""
        return {rule.name: counter.max_count(now) for rule, _, counter in self._compiled}

    def wants_for_senders(self) -> tuple[bool, bool, bool]:
        """For plain deliveries: are null, other and unknown senders counted by some rule?"""
        w = self._want_any
        return "null" in w, "non-null" in w, "unknown" in w

    def wants_delivery(
        self, sender: str | None, is_loop: bool, origin: Origin | None = None
    ) -> bool:
        """Could a delivery of a message from ``sender`` (and ``origin``) match any rule?

        Lets the pipeline skip building events for the bulk of ordinary
        mail. ``is_loop``: the delivery is a forwarding-loop bounce.
        """
        cls = "unknown" if sender is None else "null" if sender == "" else "non-null"
        return (
            cls in self._want_any
            or (is_loop and cls in self._want_loop)
            or (origin is not None and origin.kind in self._want_origin)
        )

    def wants_origin(self, origin: Origin | None) -> bool:
        """Does some rule count deliveries of messages from ``origin``'s kind?"""
        return origin is not None and origin.kind in self._want_origin

    def feed(self, fact: Fact) -> list[Hit]:
        self.local.learn(fact)
        hits: list[Hit] = []
        for rule, pred, counter in self._compiled:
            if pred(fact):
                key = _group_key(rule, fact)
                hits.append(Hit(rule, fact, counter.add(fact.event.time, key), key))
        return hits
