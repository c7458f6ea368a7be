"""Where a bounce goes: to a mailbox on this host, or out. Pure.

A bounce notification goes to the original message's envelope sender. When
that address is delivered here (by ``local``, ``virtual`` or ``lmtp``), a burst
of such bounces fills local mailboxes and sends nothing out: not a storm of
backscatter. Which domains are local is known from two places:

* the ``local_domains`` setting (for a watcher that has not seen any local
  delivery yet; ``run`` adds Postfix's own ``mydestination`` and
  ``virtual_mailbox_domains``);
* the log itself: a null-sender message (a bounce) that one of those agents
  delivered with ``status=sent`` shows its recipient's domain is local. Only
  Postfix's own delivery agents teach it, so a remote domain is never learned.

An address with no ``@`` (a bare local part, as Postfix logs ``root`` for mail
from a local user without ``append_at_myorigin``) is local. An unknown sender is
not: when in doubt, a bounce counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from watcher.core.correlate import Fact
from watcher.core.events import Delivery

LOCAL_AGENTS: Final = frozenset({"local", "virtual", "lmtp"})
MAX_LEARNED: Final = 10_000


def domain_of(address: str) -> str | None:
    """The domain of ``address`` lower-cased; None for a bare local part."""
    at = address.rfind("@")
    if at < 0:
        return None
    return address[at + 1 :].rstrip(".").lower()


class LocalDomains:
    """The domains mail is delivered to on this host: configured, and learned from the log."""

    def __init__(self, configured: Iterable[str] = ()) -> None:
        self.configured = frozenset(d.strip().rstrip(".").lower() for d in configured if d.strip())
        self.learned: set[str] = set()

    def learn(self, fact: Fact) -> None:
        """Note a bounce delivered here (call for every fact; cheap for the others)."""
        ev = fact.event
        if (
            type(ev) is Delivery
            and fact.sender == ""
            and ev.agent in LOCAL_AGENTS
            and ev.status == "sent"
        ):
            domain = domain_of(ev.recipient)
            if domain and domain not in self.configured and len(self.learned) < MAX_LEARNED:
                self.learned.add(domain)

    def is_local(self, address: str | None) -> bool:
        """Is mail to ``address`` delivered on this host? False when not known."""
        if address is None:
            return False
        if not address:
            return False  # the null sender: a bounce of a bounce is not sent at all
        domain = domain_of(address)
        return domain is None or domain in self.configured or domain in self.learned

    def adopt(self, old: LocalDomains) -> None:
        """After a reload: keep what the log taught."""
        self.learned |= old.learned
