"""The escalation ladder: contain the storm's mail first; freeze the host only if it still leaves.

Step 1 (``contain-postfix``, scoped) sends null-sender mail to Postfix's retry
transport and holds what is queued; everyone else's mail keeps flowing. It
covers the default route only: a bounce that rides ``relay_transport`` or a
``transport_maps`` entry still leaves. So after step 1 the ladder watches the
deliveries: when ``escalate_at`` null-sender deliveries to a network relay are
logged as sent more than ``escalate_after_seconds`` (log time) after step 1
took effect, it asks for step 2, ``freeze-postfix`` of the transports that
carried them. Step 3 is a human's (``stormwatch trip --freeze``). Pure: times
are the log's.

For a flood from one origin (``contain-offender``: a SASL user, a uid, a client),
step 1 stops that origin only, and what "keeps leaving" means is that origin's mail
sent to a network relay (:data:`OFFENDER_ESCAPE`, with the same group key).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from watcher.core.correlate import Fact
from watcher.core.decide import Action
from watcher.core.detect import compile_match
from watcher.core.events import MICROS, Delivery
from watcher.core.origin import origin_key
from watcher.core.rules import Match, Rule

# What "the storm's mail leaves" means: a bounce (null sender) sent to a network relay
# that is not a content filter: the backscatter rule's condition, whatever the agent.
ESCAPE = Match(event="delivery", sender="null", statuses=("sent",), remote=True)
# ... and for a contained offender: its mail, whatever the sender, sent to a network relay
OFFENDER_ESCAPE = Match(event="delivery", statuses=("sent",), remote=True)


@dataclass(slots=True)
class Ladder:
    """Where the ladder stands for the current incident."""

    content_filters: Iterable[str]
    rule: str = ""
    contained_at: int | None = None  # log time step 1 took effect (or was asked for)
    grace: int = 0
    escalate_at: int = 0
    escaped: int = 0
    transports: set[str] = field(default_factory=set)
    escalated: bool = False
    offender: str = ""  # "group=key" when step 1 was contain-offender
    _escape: Callable[[Fact], bool] = field(init=False, repr=False)
    _bounce: Callable[[Fact], bool] = field(init=False, repr=False)
    _sent: Callable[[Fact], bool] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        filters = tuple(self.content_filters)
        self._escape = self._bounce = compile_match(ESCAPE, filters)
        self._sent = compile_match(OFFENDER_ESCAPE, filters)

    @property
    def watching(self) -> bool:
        return self.contained_at is not None and not self.escalated

    def contained(self, rule: Rule, at: int, offender: str = "") -> None:
        """Step 1 for ``rule``'s trip took effect at log time ``at`` (a later, measured
        time replaces the one assumed when it was asked for); ``offender``
        (``group=key``) when step 1 stopped one origin only."""
        if self.escalated:
            return
        if self.contained_at is None or self.rule != rule.name or self.offender != offender:
            self.rule = rule.name
            self.offender = offender
            self._escape = self._bounce
            if offender:
                group, _, key = offender.partition("=")
                sent = self._sent
                self._escape = lambda f: sent(f) and origin_key(f.origin, group) == key
            self.grace = int(rule.escalate_after_seconds * MICROS)
            self.escalate_at = rule.escalate_at
            self.escaped = 0
            self.transports.clear()
        self.contained_at = at if self.contained_at is None else max(self.contained_at, at)

    def frozen(self) -> None:
        """The freeze happened (by escalation, a rule of its own, or by hand)."""
        self.escalated = True

    def reset(self) -> None:
        """Re-armed."""
        self.rule, self.contained_at, self.escaped, self.escalated = "", None, 0, False
        self.offender = ""
        self._escape = self._bounce
        self.transports.clear()

    def on_fact(self, fact: Fact) -> Action | None:
        """Step 2, when the storm's mail keeps leaving after step 1 took effect."""
        if self.contained_at is None or self.escalated:
            return None
        ev = fact.event
        if not isinstance(ev, Delivery) or ev.time <= self.contained_at + self.grace:
            return None
        if not self._escape(fact):
            return None
        self.escaped += 1
        self.transports.add(ev.transport)
        if self.escaped < self.escalate_at:
            return None
        self.escalated = True
        return Action(
            "freeze-postfix",
            "escalate",
            self.rule,
            ev.time,
            self.escaped,
            self.escalate_at,
            self.grace / MICROS,
            tuple(sorted(self.transports)),
        )
