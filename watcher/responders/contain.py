"""``contain-postfix``, the ladder's first step: hold the storm's mail, let everyone else's flow.

* ``soft_bounce = yes``: no new bounce is made (a legitimate one is delayed,
  not lost);
* ``sender_dependent_default_transport_maps`` gets a table *before* any the
  host has, ``inline:{ {<>=retry:4.7.1 held by stormwatch} }``: null-sender
  mail on the default route goes to Postfix's stock ``retry`` service and waits
  in the queue (``status=deferred (held by stormwatch)``), and smtpd answers
  450 to inbound null-sender mail for remote recipients; a flush does not undo it;
* for a forwarding loop, ``check_recipient_access`` with ``HOLD`` first in
  ``smtpd_recipient_restrictions`` holds the looping recipients' new mail at smtpd.

Each table is checked with ``postmap -q`` before it is written: ``postconf -e``
does not check, and a broken inline table would stop every remote delivery.
What main.cf sets for these parameters (raw, an absent one absent) and its text
are saved first (:meth:`ContainResponder.prepare`); rearm puts them back.

Not covered, and said in the outcome: mail routed by ``relay_transport``
(``relay_domains``) or a ``transport_maps`` entry, and services in master.cf
that override ``smtpd_recipient_restrictions`` with ``-o``. The ladder
(:mod:`watcher.core.ladder`) escalates to the freeze if the storm's mail keeps
leaving.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from watcher.core import plan
from watcher.core.decide import Action
from watcher.core.incident import Incident
from watcher.core.settings import Settings
from watcher.responders.base import Outcome
from watcher.responders.postfix import (
    PostfixControl,
    PostfixError,
    SavingStep,
    frozen_from,
    sha256,
)

FLOWS = "outbound mail from other senders keeps flowing"


_NULL_CHECK = ("<>", plan.NULL_SENDER_HOLD, f"retry:4.7.1 {plan.HELD}")


def _failed(exc: Exception) -> Outcome:
    return Outcome(
        "contain-postfix", False, f"storm mail NOT contained: {exc}", {"error": str(exc)}
    )


class ContainResponder(SavingStep):
    """``contain-postfix`` (scoped)."""

    kind = "contain-postfix"
    params = plan.CONTAIN_PARAMS
    not_done = "storm mail NOT contained"

    def __init__(
        self,
        settings: Settings,
        control: PostfixControl | None = None,
        *,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._wall = wall
        self.control = control or PostfixControl(settings.postfix.config_directory)
        self._null_table_ok = False  # the constant null-sender table answered as it must
        self._notes: list[str] | None = None  # what the scoped step does not cover

    def precheck(self) -> None:
        """At start, not on the storm's clock: check the null-sender table, learn what
        the scoped step will not cover, and what a reload needs.

        Raises PostfixError if Postfix does not read the table as expected.
        """
        self._check(*_NULL_CHECK)
        self._null_table_ok = True
        self.control.warm()
        self._notes = self._limits()

    def respond_prepared(
        self, action: Action, incident: Incident, prepared: Mapping[str, Any]
    ) -> Outcome:
        c = self.control
        saved = frozen_from(prepared).saved
        values = plan.contain_values(action, saved)
        held = plan.held_addresses(action)
        # Two steps, the bounces first: they are what escapes while this runs. The
        # recipient hold (a table made from log text, checked with postmap) follows.
        bounces = {k: v for k, v in values.items() if k != plan.RECIPIENT_RESTRICTIONS}
        details: dict[str, object] = {
            "config_directory": c.config_directory,
            "saved": saved,
            "applied": values,
            "main_cf_before": frozen_from(prepared).main_cf_before,
            "held_recipients": list(held),
        }
        how = ""
        for step in (bounces, {k: v for k, v in values.items() if k not in bounces}):
            if not step:
                continue
            try:
                if plan.SDTM in step and not self._null_table_ok:
                    self.precheck()
                if plan.RECIPIENT_RESTRICTIONS in step:
                    self._check(held[0], plan.recipient_hold_table(held), f"HOLD {plan.HELD}")
                c.set(step)
                after = c.main_cf.read_text() if c.main_cf.exists() else None
            except (PostfixError, OSError) as exc:
                what = "storm mail NOT contained" if step is bounces else (
                    f"bounces contained, but new mail for {', '.join(held)} NOT held"
                )  # fmt: skip
                details["error"] = str(exc)
                return Outcome(self.kind, False, f"{what}: {exc}", details)
            details["main_cf_after_sha256"] = sha256(after)
            try:
                how = c.reload()
            except PostfixError as exc:
                details["error"] = str(exc)
                return Outcome(
                    self.kind, False, f"main.cf changed but the reload failed: {exc}", details
                )
            if step is bounces:  # the outflow of bounces stops here (the hold follows)
                details["bounces_held_at"] = self._wall()
        details["reload"] = how
        notes = self._notes if self._notes is not None else self._limits()  # after the reload
        details["not_covered"] = notes
        what = "null-sender mail (bounces) held in the queue (retry transport), soft_bounce=yes"
        if held:
            what += f", new mail for {', '.join(held)} held at smtpd"
        summary = f"storm contained: {what}; {FLOWS} ({how})"
        if notes:
            summary += "; NOT covered: " + "; ".join(notes)
        return Outcome(self.kind, True, summary, details)

    def _check(self, key: str, table: str, want: str) -> None:
        """``postmap -q`` a new table: the expected answer, or PostfixError."""
        got = self.control.command(plan.postmap_query(self.control.config_directory, key, table))
        if got.strip() != want:
            raise PostfixError(f"postmap -q {key!r} {table!r} gave {got.strip()!r}, not {want!r}")

    def _limits(self) -> list[str]:
        """What this host routes around the default transport, and -o overrides."""
        notes: list[str] = []
        try:
            for name in ("transport_maps", "relay_domains"):
                if self.control.param(name):
                    notes.append(f"mail routed by {name} (the ladder freezes if bounces go there)")
            overrides = self.control.command(plan.postconf_overrides(self.control.config_directory))
        except PostfixError:
            return notes
        services = plan.overriding_services(overrides, plan.RECIPIENT_RESTRICTIONS)
        if services:
            notes.append(
                "master.cf services with their own smtpd_recipient_restrictions: "
                + ", ".join(services)
            )
        return notes
