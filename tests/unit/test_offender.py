"""contain-offender: which origin, what it changes, what it refuses, what it holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.incidents import make_incident
from watcher.core import plan
from watcher.core.correlate import Correlator, Fact
from watcher.core.decide import Action, Decider
from watcher.core.detect import Hit
from watcher.core.events import MICROS, Delivery, Origin
from watcher.core.ladder import Ladder
from watcher.core.latch import action_to_json, planned_from_json
from watcher.core.offender import queue_ids_of, with_evidence
from watcher.core.rules import Rule
from watcher.core.settings import PostfixSettings, Settings
from watcher.responders.dryrun import DryRunResponder
from watcher.responders.offender import OffenderResponder
from watcher.responders.postfix import PostfixControl

FLOOD = Rule.model_validate(
    {
        "name": "sasl-flood",
        "trip_at": 3,
        "actions": ["notify", "contain-offender"],
        "match": {"event": "delivery", "origin": "sasl", "remote": True},
        "window": {"seconds": 60, "group_by": "sasl-user"},
    }
)
BOB = Origin("sasl", "laptop", "192.0.2.7", "PLAIN", "bob")


def _delivery(qid: str, t: int, status: str = "sent", rcpt: str = "x@far.example") -> Delivery:
    return Delivery(
        t * MICROS, "mx", "postfix/smtp", 1, qid, "smtp", "smtp", rcpt, "", "far.example[198.51.100.1]:25",
        "far.example", "198.51.100.1", 25, "2.0.0", status, "250 ok",
    )  # fmt: skip


def _action(offender: str, ids: tuple[str, ...] = ()) -> Action:
    return Action("contain-offender", "trip", "sasl-flood", 0, 60, 60, 60.0,
                  offender=offender, queue_ids=ids)  # fmt: skip


# -- the plan (pure) ---------------------------------------------------------------------


def test_a_sasl_user_and_a_client_are_held_first_in_the_stage_before_what_was_there() -> None:
    assert plan.offender_stage_value("sasl-user", "bob", "permit_sasl_authenticated, reject") == (
        "check_sasl_access inline:{ {bob=HOLD held by stormwatch} }, "
        "permit_sasl_authenticated, reject"
    )
    assert plan.offender_stage_value("client", "192.0.2.7", None) == (
        "check_client_access inline:{ {192.0.2.7=HOLD held by stormwatch} }"
    )


@pytest.mark.parametrize(
    ("group", "key", "why"),
    [
        ("sasl-user", "bob}, permit, {x", "cannot go into a lookup table"),
        ("sasl-user", "bob smith", "cannot go into a lookup table"),
        ("client", "127.0.0.1", "on this host"),
        ("client", "::1", "on this host"),
        ("client", "not-an-ip", "not an IP address"),
        ("uid", "33", "not blocked at smtpd"),
    ],
)
def test_keys_that_cannot_be_held_safely_are_refused(group: str, key: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        plan.offender_stage_value(group, key, None)


def test_a_local_user_loses_sendmail_but_root_never_does() -> None:
    assert plan.submit_users_value("www-data", None) == "!www-data, static:anyone"
    assert plan.submit_users_value("www-data", "static:all") == "!www-data, static:all"
    with pytest.raises(ValueError, match="root"):
        plan.submit_users_value("root", None)
    with pytest.raises(ValueError, match="cannot go into"):
        plan.submit_users_value("a, static:anyone", None)


def test_contain_offender_needs_a_rule_grouped_by_origin() -> None:
    with pytest.raises(ValidationError, match=r"contain-offender needs window\.group_by"):
        Rule.model_validate({**FLOOD.model_dump(), "window": {"seconds": 60, "group_by": "sender"}})


# -- the decision and the join -----------------------------------------------------------


def test_a_trip_names_the_group_that_reached_trip_at_as_the_offender() -> None:
    decider = Decider([FLOOD])
    fact = Fact(_delivery("Q1", 1), "bob@example.org", "", BOB)
    assert decider.on_hit(Hit(FLOOD, fact, 2, "bob")) == []
    actions = decider.on_hit(Hit(FLOOD, fact, 3, "bob"))
    assert [(a.kind, a.offender) for a in actions] == [
        ("notify", ""),
        ("contain-offender", "sasl-user=bob"),
    ]


def test_a_second_offender_of_a_contained_rule_escalates_to_the_freeze() -> None:
    decider = Decider([FLOOD])
    fact = Fact(_delivery("Q1", 1), "x@example.org", "", BOB)
    assert [a.kind for a in decider.on_hit(Hit(FLOOD, fact, 3, "bob"))] == [
        "notify",
        "contain-offender",
    ]
    assert decider.on_hit(Hit(FLOOD, fact, 9, "bob")) == []  # the same one: contained
    assert decider.on_hit(Hit(FLOOD, fact, 2, "eve")) == []  # below trip_at
    (step,) = decider.on_hit(Hit(FLOOD, fact, 3, "eve"))
    assert (step.kind, step.severity) == ("freeze-postfix", "escalate")
    assert decider.on_hit(Hit(FLOOD, fact, 4, "eve")) == []  # once


def test_another_flood_rules_offender_escalates_and_other_rules_never_do() -> None:
    local = Rule.model_validate(
        {**FLOOD.model_dump(), "name": "local-flood", "window": {"seconds": 60, "group_by": "uid"}}
    )
    bursts = Rule.model_validate(
        {**FLOOD.model_dump(), "name": "burst", "actions": ["notify"],
         "window": {"seconds": 60, "group_by": "recipient-domain"}}
    )  # fmt: skip
    decider = Decider([FLOOD, local, bursts])
    fact = Fact(_delivery("Q1", 1), "x@example.org", "", BOB)
    decider.on_hit(Hit(FLOOD, fact, 3, "bob"))
    decider.on_hit(Hit(bursts, fact, 3, "a.example"))
    assert decider.on_hit(Hit(bursts, fact, 3, "b.example")) == []  # not a flood rule
    (step,) = decider.on_hit(Hit(local, fact, 3, "33"))
    assert (step.kind, step.severity, step.rule) == ("freeze-postfix", "escalate", "local-flood")


def test_the_action_carries_the_offenders_open_queue_ids_and_domains() -> None:
    join = Correlator()
    join.note_origin("QBOB1", BOB, 1)
    join.note_origin("QALICE", Origin("sasl", "pc", "192.0.2.8", "PLAIN", "alice"), 1)
    join.note_origin("3F1A2B4C5D", BOB, 2)
    join.forget("QBOB1")  # delivered and removed: nothing to hold
    join.note_origin("QBOB3", BOB, 3)

    class Ev:
        def __init__(self, key: str, domain: str) -> None:
            self.key, self.domain = key, domain

    evidence = [Ev("bob", "a.example"), Ev("bob", "a.example"), Ev("alice", "c.example"),
                Ev("bob", "b.example")]  # fmt: skip
    got = with_evidence(_action("sasl-user=bob"), join, evidence)
    assert got.queue_ids == ("3F1A2B4C5D", "QBOB3")
    assert got.domains == ("a.example (2)", "b.example (1)")
    assert queue_ids_of(join, "sasl-user=alice") == ["QALICE"]
    assert queue_ids_of(join, "") == []


def test_offender_fields_survive_the_latch() -> None:
    a = _action("uid=33", ("QA", "QB"))
    assert planned_from_json(action_to_json(a)) == a


# -- the ladder: escalate only when the offender's mail keeps leaving ---------------------


def test_the_ladder_escalates_on_the_offenders_sent_mail_only() -> None:
    ladder = Ladder(())
    ladder.contained(FLOOD, 0, "sasl-user=bob")
    alice = Origin("sasl", "pc", "192.0.2.8", "PLAIN", "alice")
    late = 60  # well after escalate_after_seconds
    assert ladder.on_fact(Fact(_delivery("QA", late), "a@x", "", alice)) is None
    assert ladder.on_fact(Fact(_delivery("QB", late, "deferred"), "b@x", "", BOB)) is None
    assert ladder.on_fact(Fact(_delivery("QN", late), "", "", None)) is None  # a bounce
    assert ladder.on_fact(Fact(_delivery("QB", late), "b@x", "", BOB)) is None
    step = ladder.on_fact(Fact(_delivery("QC", late), "b@x", "", BOB))
    assert step is not None
    assert step.kind == "freeze-postfix"
    assert step.severity == "escalate"
    ladder.reset()
    assert ladder.offender == ""
    assert not ladder.watching


# -- the responder, on a recording PostfixControl -----------------------------------------


class Recording(PostfixControl):
    def __init__(self, tmp: Path, overrides: str = "") -> None:
        super().__init__(str(tmp))
        self.main_cf.write_text("myhostname = mx\n")
        self.overrides = overrides
        self.calls: list[tuple[str, object]] = []
        self.values: dict[str, str] = {}

    def explicit(self, names: object) -> dict[str, str | None]:
        return {**dict.fromkeys(plan.OFFENDER_PARAMS), plan.RECIPIENT_RESTRICTIONS: "reject"}

    def command(self, argv: Sequence[str], *, stdin: str | None = None) -> str:
        self.calls.append((argv[0], stdin))
        if argv[0] == "postmap":
            return f"HOLD {plan.HELD}\n"
        if argv[0] == "postconf":  # -P
            return self.overrides
        return ""

    def set(self, values: Mapping[str, str]) -> None:
        self.values.update(values)
        with self.main_cf.open("a") as f:
            f.writelines(f"{k} = {v}\n" for k, v in values.items())

    def reload(self) -> str:
        return "SIGHUP"


def _respond(tmp_path: Path, control: Recording, action: Action) -> tuple[OffenderResponder,
                                                                          dict[str, object], str]:  # fmt: skip
    settings = Settings(postfix=PostfixSettings(config_directory=str(tmp_path)))
    responder = OffenderResponder(settings, control, login=lambda uid: {33: "www-data"}[uid])
    out = responder.respond(action, make_incident("i-1", "sasl-flood"))
    return responder, out.details, ("OK " if out.ok else "FAILED ") + out.summary


def test_a_sasl_user_is_held_at_smtpd_and_its_queued_mail_by_queue_id(tmp_path: Path) -> None:
    control = Recording(tmp_path)
    responder, details, summary = _respond(tmp_path, control, _action("sasl-user=bob",
                                                                      ("3F1A2B4C5D", "bad id!")))  # fmt: skip
    assert summary.startswith("OK offender sasl-user=bob contained"), summary
    assert control.values == {
        plan.RECIPIENT_RESTRICTIONS: "check_sasl_access inline:{ {bob=HOLD held by stormwatch} },"
        " reject"
    }
    assert details["held"] == ["3F1A2B4C5D"]  # the malformed ID never reaches postsuper
    assert ("postsuper", "3F1A2B4C5D\n") in control.calls
    assert "stormwatch rearm --release-held" in summary
    assert responder.sweep(["3F1A2B4C5D", "3F1A2B4C5E"]) == ["3F1A2B4C5E"]  # each ID held once


def test_a_submission_service_overriding_the_recipient_stage_moves_the_check(
    tmp_path: Path,
) -> None:
    overrides = (
        "submission/inet/smtpd_recipient_restrictions = permit_sasl_authenticated,reject\n"
        "submission/inet/syslog_name = postfix/submission\n"
    )
    control = Recording(tmp_path, overrides)
    _, details, summary = _respond(tmp_path, control, _action("sasl-user=bob"))
    assert summary.startswith("OK"), summary
    assert list(control.values) == [plan.DATA_RESTRICTIONS]
    both = overrides + "submission/inet/smtpd_data_restrictions = reject_unauth_pipelining\n"
    control = Recording(tmp_path, both)
    _, details, summary = _respond(tmp_path, control, _action("sasl-user=bob"))
    assert list(control.values) == [plan.RECIPIENT_RESTRICTIONS]
    assert details["not_covered"] == [
        "master.cf services with their own smtpd_recipient_restrictions: submission "
        "(held by queue ID)"
    ]


def test_a_local_uid_loses_sendmail_and_a_loopback_client_is_only_held_by_id(
    tmp_path: Path,
) -> None:
    control = Recording(tmp_path)
    _, _, summary = _respond(tmp_path, control, _action("uid=33"))
    assert control.values == {plan.SUBMIT_USERS: "!www-data, static:anyone"}, summary
    control = Recording(tmp_path)
    _, details, summary = _respond(tmp_path, control, _action("client=127.0.0.1", ("4B2C3D4E5F",)))
    assert control.values == {}
    assert summary.startswith("FAILED"), summary  # the ladder watches it all the same
    assert details["held"] == ["4B2C3D4E5F"]
    assert "on this host" in summary


def test_the_dry_run_says_what_a_live_run_would_change() -> None:
    settings = Settings()
    steps = DryRunResponder(settings).describe(_action("sasl-user=bob", ("Q1", "Q2")))
    text = "\n".join(steps)
    assert "check_sasl_access inline:{ {bob=HOLD held by stormwatch} }" in text
    assert "hold the 2 queued message(s)" in text


def test_a_fleet_trip_trips_the_rule_here_with_the_same_offender_once() -> None:
    decider = Decider([FLOOD])
    actions = decider.trip_for_fleet(FLOOD, 5, "sasl-user=bob")
    assert [(a.kind, a.offender, a.time) for a in actions] == [
        ("notify", "", 5),
        ("contain-offender", "sasl-user=bob", 5),
    ]
    assert decider.is_tripped("sasl-flood")
    assert decider.trip_for_fleet(FLOOD, 6, "sasl-user=bob") == []  # once
    other = Decider([FLOOD])
    kinds = [a.kind for a in other.trip_for_fleet(FLOOD, 5, "uid=33")]
    assert kinds == ["notify"]  # not an offender of this rule's kind: nothing to block
