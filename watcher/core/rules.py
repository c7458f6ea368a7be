"""What a rule is: the schema of a ``[[rule]]`` table, validated by pydantic. Pure.

Reading rule files (the bundled defaults, ``--rules`` directories) and
errors that name the file and line are :mod:`watcher.runtime.rulefiles`'s.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ActionKind = Literal[
    "notify", "stop-fetchmail", "contain-offender", "contain-postfix", "freeze-postfix",
    "hold-bounces", "command",
]  # fmt: skip
# The order the kill switch runs a trip's actions in: the outflow first (contain the
# offender or the storm's mail, or freeze Postfix; then hold what is queued), then the
# inflow, the command, and the page last (it says what was done and what failed).
ACTION_ORDER: tuple[ActionKind, ...] = (
    "contain-offender",
    "contain-postfix",
    "freeze-postfix",
    "hold-bounces",
    "stop-fetchmail",
    "command",
    "notify",
)
EventKind = Literal["delivery", "bounce-notice", "forwarding-loop"]
GroupBy = Literal[
    "none", "recipient-domain", "recipient", "sender", "relay", "transport",
    "sasl-user", "client", "uid",
]  # fmt: skip
# group keys that are a message's origin (watcher.core.origin)
ORIGIN_GROUPS = frozenset({"sasl-user", "client", "uid"})
OriginKind = Literal["any", "sasl", "pickup", "client", "loopback"]

NAME_RE = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Strict):
    """Which events a rule counts. Every condition given must hold."""

    event: EventKind = "delivery"
    sender: Literal["any", "null", "non-null"] = Field(
        "any", description="envelope sender: 'null' is from=<> (bounces)"
    )
    agents: tuple[str, ...] | None = Field(
        None, description="delivery programs, e.g. ['smtp'] (not lmtp/local/virtual/pipe)"
    )
    transports: tuple[str, ...] | None = Field(
        None, description="master.cf service names, e.g. ['smtp', 'relay']"
    )
    statuses: tuple[str, ...] | None = Field(None, description="e.g. ['sent']")
    remote: bool = Field(
        False,
        description="only deliveries to a network relay host[ip]:port that is not a content filter",
    )
    exclude_relays: tuple[str, ...] = Field(
        (), description="more relays never counted: 'ip:port', '[ipv6]:port', 'host:port' or 'ip'"
    )
    notices: tuple[str, ...] | None = Field(
        None, description="bounce-notice kinds, e.g. ['sender non-delivery']"
    )
    origin: OriginKind = Field(
        "any",
        description=(
            "where the message came from: 'sasl' (an authenticated SMTP client), 'pickup'"
            " (sendmail(1), by uid), 'client' (a network client without SASL), 'loopback'"
            " (a client on this host without SASL)"
        ),
    )
    destination: Literal["any", "not-local"] = Field(
        "any",
        description=(
            "bounce-notice: 'not-local' skips notifications to an address delivered on this"
            " host (local_domains, or a domain local/virtual/lmtp delivered a bounce to)"
        ),
    )


class Window(_Strict):
    seconds: Annotated[float, Field(gt=0, le=7 * 86400)]
    group_by: GroupBy = "none"


class Rule(_Strict):
    name: Annotated[str, Field(pattern=NAME_RE)]
    description: str = ""
    enabled: bool = True
    match: Match
    window: Window
    warn_at: Annotated[int, Field(ge=1, le=100_000)] | None = None
    trip_at: Annotated[int, Field(ge=1, le=100_000)] | None = None
    actions: tuple[ActionKind, ...] = ("notify",)
    containment: Literal["scoped", "freeze"] = Field(
        "scoped",
        description=(
            "where the ladder of contain-postfix starts: 'scoped' holds the storm's mail"
            " (null-sender mail to the retry transport, soft_bounce) and lets everyone else's"
            " flow; 'freeze' defers the outbound transports at once (all outbound mail waits)"
        ),
    )
    escalate_after_seconds: Annotated[float, Field(ge=0, le=3600)] = Field(
        10.0,
        description=(
            "how long the scoped step gets to prove itself: storm mail still leaving this"
            " long (log time) after it took effect escalates to the freeze"
        ),
    )
    escalate_at: Annotated[int, Field(ge=1, le=10_000)] = Field(
        2, description="how many storm deliveries must leave after that to escalate"
    )
    shared: bool = Field(
        False, description="count the window across the fleet too ([fleet] in the settings)"
    )

    @model_validator(mode="after")
    def _thresholds(self) -> Rule:
        if self.warn_at is None and self.trip_at is None:
            raise ValueError("give warn_at, trip_at or both")
        if self.warn_at is not None and self.trip_at is not None and self.warn_at >= self.trip_at:
            raise ValueError(f"warn_at ({self.warn_at}) must be below trip_at ({self.trip_at})")
        if "contain-offender" in self.actions and self.window.group_by not in ORIGIN_GROUPS:
            raise ValueError(
                "contain-offender needs window.group_by = 'sasl-user', 'uid' or 'client':"
                " the group is the offender it contains"
            )
        return self
