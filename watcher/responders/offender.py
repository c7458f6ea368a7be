"""``contain-offender``: stop one origin's mail, let everyone else's flow.

The first step of the ladder for a flood from one origin (a rule grouped by
``sasl-user``, ``uid`` or ``client``). Its new mail first, then what is queued:

* a SASL user: ``check_sasl_access inline:{ {user=HOLD held by stormwatch} }``
  first in an smtpd restriction stage; a client address: ``check_client_access``
  the same way. smtpd accepts the offender's mail and cleanup puts it on hold
  (the sender sees no error to route around). The stage is
  ``smtpd_recipient_restrictions`` unless a master.cf service overrides it with
  ``-o`` (``postconf -P``) and none overrides ``smtpd_data_restrictions``: then
  that one. Services that override the chosen stage are named in the outcome: the
  offender's mail through them is held by queue ID as the log shows it, and the
  ladder freezes the host if it still leaves;
* a local uid: ``authorized_submit_users = !login, <as before>``: sendmail(1)
  refuses that user (it reads main.cf on each run: no reload needed). root is
  never refused;
* its queued mail: ``postsuper -h`` of the queue IDs the join saw from that
  origin, at the trip and every sweep after it (:meth:`sweep`).

Each table is checked with ``postmap -q`` first, what main.cf sets is saved for
rearm (:meth:`prepare`), and nothing is deleted: held mail waits for a human.
"""

from __future__ import annotations

import pwd
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from watcher.core import plan
from watcher.core.decide import Action, split_offender
from watcher.core.incident import Incident
from watcher.core.parse import QID_RE
from watcher.core.settings import Settings
from watcher.responders.base import Outcome
from watcher.responders.postfix import (
    PostfixControl,
    PostfixError,
    SavingStep,
    frozen_from,
    sha256,
)

FLOWS = "everyone else's mail keeps flowing"


def login_of(uid: int) -> str:
    """The login name of ``uid`` (KeyError if it has none)."""
    return pwd.getpwuid(uid).pw_name


def release_hint(config_directory: str) -> str:
    return (
        "its held mail stays on hold until you decide: inspect it with postqueue -j and "
        f"postcat -q ID; 'stormwatch rearm' lifts the block, 'stormwatch rearm --release-held' "
        f"also releases the held mail (postsuper -c {config_directory} -H ID releases one); "
        "stormwatch never deletes"
    )


class OffenderResponder(SavingStep):
    """``contain-offender``."""

    kind = "contain-offender"
    params = plan.OFFENDER_PARAMS
    not_done = "offender NOT contained"

    def __init__(
        self,
        settings: Settings,
        control: PostfixControl | None = None,
        *,
        login: Callable[[int], str] = login_of,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._wall = wall
        self.control = control or PostfixControl(settings.postfix.config_directory)
        self._login = login
        self.held: list[str] = []

    def respond_prepared(
        self, action: Action, incident: Incident, prepared: Mapping[str, Any]
    ) -> Outcome:
        group, key = split_offender(action.offender)
        frozen = frozen_from(prepared)
        details: dict[str, object] = {
            "config_directory": self.control.config_directory,
            "offender": action.offender,
            "count": action.count,
            "domains": list(action.domains),
            "saved": dict(frozen.saved),
            "main_cf_before": frozen.main_cf_before,
        }
        blocked, not_covered = "", list[str]()
        try:
            values, blocked, not_covered = self._block(group, key, frozen.saved)
        except (ValueError, PostfixError) as exc:  # held by queue ID only; the ladder watches
            not_covered.append(f"new mail NOT blocked: {exc}")
            values = {}
        if values:
            try:
                self.control.set(values)
                details["applied"] = values
                after = self.control.main_cf.read_text()
                details["main_cf_after_sha256"] = sha256(after)
                details["reload"] = self.control.reload()
                details["blocked_at"] = self._wall()  # its new mail stops here
            except (PostfixError, OSError) as exc:
                details["error"] = str(exc)
                blocked = ""
                not_covered.append(f"new mail NOT blocked: {exc}")
        try:
            held = self.sweep(action.queue_ids)
        except PostfixError as exc:
            details["error"] = str(exc)
            held = []
            not_covered.append(f"its queued mail NOT held: {exc}")
        details["held"] = held
        details["not_covered"] = not_covered
        ok = bool(blocked) and "error" not in details
        who = action.offender or "?"
        summary = (
            f"offender {who} contained: {blocked}; {len(held)} of its queued message(s) held"
            if ok
            else f"offender {who} NOT fully contained; {len(held)} of its queued message(s) held"
        )
        if action.domains:
            summary += f"; it sent to {', '.join(action.domains)}"
        if ok:
            summary += f"; {FLOWS}"
        if not_covered:
            summary += "; NOT covered: " + "; ".join(not_covered)
        summary += "; " + release_hint(self.control.config_directory)
        return Outcome(self.kind, ok, summary, details)

    def sweep(self, queue_ids: Sequence[str]) -> list[str]:
        """Hold these queue IDs of the offender's (those not held by us yet); the IDs
        newly held. Raises PostfixError."""
        ids = [q for q in dict.fromkeys(queue_ids) if QID_RE.fullmatch(q) and q not in self.held]
        if ids:
            self.control.postsuper("-h", ids)
            self.held.extend(ids)
        return ids

    def _block(
        self, group: str, key: str, saved: Mapping[str, str | None]
    ) -> tuple[dict[str, str], str, list[str]]:
        """``(main.cf values, what they do, what they do not cover)`` for the offender's
        new mail. Raises ValueError (cannot be blocked) or PostfixError."""
        if group == "uid":
            try:
                login = self._login(int(key))
            except (KeyError, ValueError):
                raise ValueError(f"uid {key} has no login name") from None
            value = plan.submit_users_value(login, saved.get(plan.SUBMIT_USERS))
            return {plan.SUBMIT_USERS: value}, f"sendmail(1) refused to {login} (uid {key})", []
        stage, others = self._stage()
        value = plan.offender_stage_value(group, key, saved.get(stage))
        lookup = plan.offender_check(group, key)[1]  # the key as the table has it
        table = plan.offender_hold_table(lookup)
        got = self.control.command(plan.postmap_query(self.control.config_directory, lookup, table))
        if got.strip() != f"HOLD {plan.HELD}":
            raise PostfixError(f"postmap -q {lookup!r} {table!r} gave {got.strip()!r}")
        notes = (
            [f"master.cf services with their own {stage}: {', '.join(others)} (held by queue ID)"]
            if others
            else []
        )
        return {stage: value}, f"its new mail held at smtpd ({stage})", notes

    def _stage(self) -> tuple[str, list[str]]:
        """The restriction stage to put the check in, and the services overriding it."""
        out = self.control.command(plan.postconf_overrides(self.control.config_directory))
        overriding = {s: plan.overriding_services(out, s) for s in plan.OFFENDER_STAGES}
        for stage in plan.OFFENDER_STAGES:
            if not overriding[stage]:
                return stage, []
        first = plan.OFFENDER_STAGES[0]
        return first, overriding[first]
