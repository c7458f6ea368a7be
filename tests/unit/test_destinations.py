"""Which bounces stay on this host: local domains configured, and learned from the log."""

from __future__ import annotations

from watcher.core.correlate import Fact
from watcher.core.destinations import LocalDomains, domain_of
from watcher.core.events import Delivery

T = 1_000_000_000_000


def delivered(to: str, agent: str = "local", status: str = "sent", sender: str = "") -> Fact:
    relay = "local" if agent == "local" else "mx.example.org[192.0.2.1]:25"
    ev = Delivery(
        T, "mx", f"postfix/{agent}", 1, "ABCDEF1234", agent, agent, to, "", relay,
        relay, "", 0, "2.0.0", status, "",
    )  # fmt: skip
    return Fact(ev, sender, "")


def test_domain_of() -> None:
    assert domain_of("root@MX.Example.NET.") == "mx.example.net"
    assert domain_of('"a@b"@example.org') == "example.org"
    assert domain_of("root") is None


def test_configured_and_bare_local_parts_are_local_unknown_senders_are_not() -> None:
    d = LocalDomains([" Example.ORG ", ""])
    assert d.is_local("user@example.org")
    assert d.is_local("root")
    assert not d.is_local("user@example.net")
    assert not d.is_local(None)
    assert not d.is_local("")


def test_only_bounces_delivered_here_by_postfixs_own_agents_teach_a_domain() -> None:
    d = LocalDomains()
    d.learn(delivered("a@remote.example", agent="smtp"))  # relayed out
    d.learn(delivered("b@user.example", sender="user@user.example"))  # not a bounce
    d.learn(delivered("c@bounced.example", status="bounced"))  # not delivered
    assert d.learned == set()
    for agent, domain in (("local", "mx.example.net"), ("virtual", "v.example"),
                          ("lmtp", "l.example")):  # fmt: skip
        d.learn(delivered(f"x@{domain.upper()}", agent=agent))
    assert d.learned == {"mx.example.net", "v.example", "l.example"}
    assert d.is_local("root@mx.example.net")
    fresh = LocalDomains()
    fresh.adopt(d)
    assert fresh.is_local("x@v.example")
