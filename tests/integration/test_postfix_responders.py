"""Freeze, hold and restore against a real private Postfix in a real storm."""

from __future__ import annotations

import subprocess

import pytest

from tests.incidents import make_incident
from tests.integration.conftest import LIST, loop_post
from tests.integration.harness.postfix import PostfixInstance
from tests.integration.harness.procs import still_running
from tests.integration.harness.requires import wait_for
from tests.integration.harness.sink import SmtpSink
from watcher.core.decide import Action
from watcher.core.settings import PostfixSettings, Settings
from watcher.responders.postfix import (
    FreezeResponder,
    HoldResponder,
    PostfixControl,
    frozen_from,
    restore,
)

INCIDENT = make_incident("20261128T000000Z-test", "forwarding-loop", "", 3, 3, 600, "", "", "")
FREEZE = Action("freeze-postfix", "trip", "backscatter", 0, 10, 10, 60, ("smtp",))
HOLD = Action("hold-bounces", "trip", "backscatter", 0, 10, 10, 60)


def _settings(postfix: PostfixInstance) -> Settings:
    return Settings(postfix=PostfixSettings(config_directory=str(postfix.config_dir)))


@pytest.mark.integration
def test_freeze_stops_the_outflow_at_once_and_restore_puts_main_cf_back_byte_for_byte(
    postfix: PostfixInstance, sink: SmtpSink
) -> None:
    main_cf = postfix.config_dir / "main.cf"
    original = main_cf.read_bytes()
    loop_post(postfix, 1)
    sink.wait_for_count(1, 15, what="the bounce made before the freeze")

    master = postfix.master_pid()
    before = [p for p in postfix.processes() if p.pid != master]
    outcome = FreezeResponder(_settings(postfix)).respond(FREEZE, INCIDENT)
    assert outcome.ok, outcome.summary
    assert "SIGHUP to the master" in outcome.summary
    assert outcome.details["saved"] == {"soft_bounce": None, "defer_transports": None}
    assert postfix.param("soft_bounce") == "yes"
    assert postfix.param("defer_transports") == "smtp"
    # the fast reload: every daemon from before the signal is gone within a second
    wait_for(
        lambda: not still_running(before),
        1.0,
        "the daemons from before the SIGHUP to exit",
        seen=lambda: [p.name() for p in still_running(before)],
    )

    for i in range(2, 6):
        loop_post(postfix, i)
    soft = postfix.wait_for_log(r"(?P<qid>\w+): to=<looper@.*status=SOFTBOUNCE", 15, count=4)
    assert len(sink.messages) == 1, "nothing escaped after the freeze"

    hold = HoldResponder(_settings(postfix))
    held = hold.respond(HOLD, INCIDENT)
    assert held.ok, held.summary
    held_ids = held.details["held"]
    assert isinstance(held_ids, list)
    assert set(held_ids) == {m["qid"] for m in soft}
    queue = postfix.queue_json()
    assert {e["queue_name"] for e in queue} == {"hold"}
    assert len(queue) == 4, "nothing deleted"
    assert hold.sweep() == []  # a second sweep finds nothing new

    steps = restore(PostfixControl(str(postfix.config_dir)), frozen_from(outcome.details))
    assert main_cf.read_bytes() == original
    assert "restored to its text before the freeze" in steps[0]
    assert postfix.param("soft_bounce") == "no"
    assert postfix.param("defer_transports") == ""
    # still held until someone releases them
    assert {e["queue_name"] for e in postfix.queue_json()} == {"hold"}


@pytest.mark.integration
def test_restore_keeps_an_admins_edit_and_existing_values(
    postfix: PostfixInstance, sink: SmtpSink
) -> None:
    postfix.postconf("-e", "defer_transports=slow", "soft_bounce=")
    settings = _settings(postfix)
    outcome = FreezeResponder(settings).respond(FREEZE, INCIDENT)
    assert outcome.ok, outcome.summary
    assert outcome.details["saved"] == {"soft_bounce": "", "defer_transports": "slow"}
    assert postfix.param("defer_transports") == "slow,smtp"  # added to, not replaced
    postfix.postconf("-e", "delay_warning_time=4h")  # the admin fixes something meanwhile

    restore(PostfixControl(str(postfix.config_dir)), frozen_from(outcome.details))
    explicit = postfix.postconf("-n")
    assert "defer_transports = slow\n" in explicit
    assert "soft_bounce =\n" in explicit
    assert "delay_warning_time = 4h" in explicit


@pytest.mark.integration
def test_hold_takes_the_null_sender_bounces_deferred_by_the_freeze(
    postfix: PostfixInstance, sink: SmtpSink
) -> None:
    # defer only (no soft_bounce): bounces are made and pile up as MAILER-DAEMON mail
    postfix.postconf("-e", "defer_transports=smtp")
    postfix.backdate_main_cf()
    postfix.hup_master()
    for i in range(3):
        loop_post(postfix, i)
    postfix.wait_for_log(r"status=deferred \(deferred transport\)", 15, count=3)
    hold = HoldResponder(_settings(postfix))
    assert len(hold.sweep()) == 3
    queue = postfix.queue_json()
    assert {(e["sender"], e["queue_name"]) for e in queue} == {("MAILER-DAEMON", "hold")}
    assert {r["address"] for e in queue for r in e["recipients"]} == {LIST.bounce_address}
    # released, they are queued again (and would go out once the freeze is undone)
    control = PostfixControl(str(postfix.config_dir))
    assert control.postsuper("-H", hold.held) == 3
    assert {e["queue_name"] for e in postfix.queue_json()} <= {"deferred", "active", "incoming"}
    assert sink.messages == []


@pytest.mark.integration
def test_a_failing_postfix_command_is_an_outcome_not_an_exception(postfix: PostfixInstance) -> None:
    settings = Settings(postfix=PostfixSettings(config_directory=str(postfix.root / "nowhere")))
    outcome = FreezeResponder(settings).respond(FREEZE, INCIDENT)
    assert not outcome.ok
    assert "Postfix NOT frozen" in outcome.summary


@pytest.mark.integration
def test_a_stale_master_pid_is_not_signalled_and_a_stopped_postfix_is_said(
    postfix: PostfixInstance,
) -> None:
    """Postfix stopped, its master.pid left behind naming a live, unrelated process:
    the freeze writes main.cf, signals nobody, and says Postfix is not running."""
    pidfile = postfix.master_pid_path
    postfix.postfix("stop")
    wait_for(lambda: not postfix.master_running(), 15, "the master to stop")
    bystander = subprocess.Popen(["sleep", "60"])  # SIGHUP would end it
    try:
        pidfile.write_text(f"{bystander.pid:>10}\n", encoding="ascii")
        outcome = FreezeResponder(_settings(postfix)).respond(FREEZE, INCIDENT)
        assert bystander.poll() is None, "the freeze signalled a process that is not Postfix"
        assert outcome.ok, outcome.summary
        assert "Postfix is not running" in outcome.summary
        assert postfix.param("soft_bounce") == "yes"  # in force at its next start
    finally:
        bystander.kill()
        bystander.wait(5)


def test_run_adds_postfixs_own_local_domains_expanded(postfix: PostfixInstance) -> None:
    from watcher.cli.run import with_postfix_domains

    postfix.postconf(
        "-e",
        "mydestination = $myhostname, localhost.$mydomain, hash:/nonexistent/table",
        "virtual_mailbox_domains = v.example.org",
    )
    settings = _settings(postfix).model_copy(update={"local_domains": ("example.net",)})
    domains = with_postfix_domains(settings).local_domains
    assert domains == (
        "example.net",
        postfix.param("myhostname"),
        f"localhost.{postfix.param('mydomain')}",
        "v.example.org",
    )
