"""The dry-run responder: says what a live run would do, and does nothing.

It imports none of the real responders; it renders the same argv lists they
would run (from :mod:`watcher.core.plan`) as text.
"""

from __future__ import annotations

import shlex

from watcher.core import plan
from watcher.core.decide import Action
from watcher.core.pipeline import Where
from watcher.core.plan import PlannedAction
from watcher.core.settings import Settings


class DryRunResponder:
    """Collects the plan; call it as the pipeline's ``on_actions``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.planned: list[PlannedAction] = []

    def __call__(self, actions: list[Action], where: Where) -> None:
        for a in actions:
            self.planned.append(PlannedAction(a, where, tuple(self.describe(a))))

    def describe(self, a: Action) -> list[str]:
        s = self.settings
        if a.kind == "notify":
            targets = len(s.notify.urls)
            what = "warning" if a.severity == "warn" else "trip"
            to = f"{targets} configured target(s)" if targets else "no target configured"
            return [
                f"page the admin ({what}: {a.rule}, {a.count} in {a.window_seconds:g} s) to {to}"
            ]
        if a.kind == "stop-fetchmail":
            user = f" of user {s.fetchmail.user}" if s.fetchmail.user else ""
            return [
                f"send SIGINT to every fetchmail process{user}; "
                f"SIGTERM to any still running after {s.fetchmail.sigterm_after_seconds:g} s"
            ]
        cfg = s.postfix.config_directory
        reload = (
            "signal the Postfix master to re-read main.cf (SIGHUP; else "
            + shlex.join(plan.postfix_reload(cfg))
            + ")"
        )
        if a.kind == "contain-postfix":
            values = plan.contain_values(a, {})
            held = plan.held_addresses(a)
            return [
                "step 1 of the ladder, scoped (outbound mail from other senders keeps flowing)",
                "save what main.cf sets: "
                + shlex.join(plan.postconf_explicit(cfg, plan.CONTAIN_PARAMS)),
                "check the new tables: "
                + shlex.join(plan.postmap_query(cfg, "<>", plan.NULL_SENDER_HOLD)),
                "run: "
                + shlex.join(plan.postconf_set(cfg, values))
                + " (each table put before any main.cf has)",
                reload,
                "null-sender mail then waits in the queue (retry transport, held by stormwatch)"
                + (f"; new mail for {', '.join(held)} is held at smtpd" if held else ""),
                "step 2, if null-sender mail still leaves after that (a relay_transport or "
                "transport_maps route): freeze the transports that carried it "
                "(soft_bounce=yes, defer_transports=...: all outbound mail on them waits)",
                "step 3, by hand: stormwatch trip --freeze",
            ]
        if a.kind == "contain-offender":
            return offender_steps(a, cfg, reload)
        if a.kind == "freeze-postfix":
            step2 = (
                [f"step 2 of the ladder: {a.count} storm deliveries left more than "
                 f"{a.window_seconds:g} s after step 1 (escalate_at {a.threshold})"]
                if a.severity == "escalate"
                else []
            )  # fmt: skip
            return [
                *step2,
                "save what main.cf sets: "
                + shlex.join(plan.postconf_explicit(cfg, ("soft_bounce", "defer_transports"))),
                "run: " + shlex.join(plan.postconf_set(cfg, plan.freeze_values(a, s))),
                reload,
            ]
        if a.kind == "hold-bounces":
            return [
                "list the queue: " + shlex.join(plan.postqueue_list(cfg)),
                "hold null-sender (MAILER-DAEMON) messages and soft-bounced loop originals: "
                + shlex.join(plan.postsuper_stdin(cfg, "-h"))
                + " (queue IDs on stdin); again for new arrivals while tripped",
            ]
        argv = s.command.argv
        if not argv:
            return ["run the configured command: none is configured"]
        return [f"run: {shlex.join(argv)} (placeholders filled; no shell)"]


def offender_steps(a: Action, cfg: str, reload: str) -> list[str]:
    """What ``contain-offender`` would do for ``a.offender`` (a live run checks the
    host's master.cf overrides first, and may pick smtpd_data_restrictions instead)."""
    group, _, key = a.offender.partition("=")
    steps = [
        f"step 1 of the ladder, per offender: stop {a.offender} only "
        "(everyone else's mail keeps flowing)"
        + (f"; it sent to {', '.join(a.domains)}" if a.domains else ""),
        "save what main.cf sets: " + shlex.join(plan.postconf_explicit(cfg, plan.OFFENDER_PARAMS)),
    ]
    try:
        if group == "uid":
            value = plan.submit_users_value(f"<login of uid {key}>", None)
            steps.append(f"run: postconf -c {cfg} -e '{plan.SUBMIT_USERS}={value}' "
                         "(sendmail(1) refuses that user)")  # fmt: skip
        else:
            value = plan.offender_stage_value(group, key, None)
            lookup = plan.offender_check(group, key)[1]
            steps += [
                "check the table: " + shlex.join(
                    plan.postmap_query(cfg, lookup, plan.offender_hold_table(lookup))),
                "run: " + shlex.join(plan.postconf_set(cfg, {plan.RECIPIENT_RESTRICTIONS: value}))
                + " (first in the stage, before what main.cf has)",
                reload,
                "its new mail is then accepted and held (HOLD): reversible, nothing bounced",
            ]  # fmt: skip
    except ValueError as exc:
        steps.append(f"its new mail cannot be blocked: {exc}")
    steps += [
        f"hold the {len(a.queue_ids)} queued message(s) the log shows from it: "
        + shlex.join(plan.postsuper_stdin(cfg, "-h"))
        + " (queue IDs on stdin); again for its new queue IDs while tripped",
        "step 2, if its mail still leaves after that: freeze the outbound transports",
    ]
    return steps
