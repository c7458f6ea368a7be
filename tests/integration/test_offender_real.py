"""contain-offender on a real Postfix: its choice of smtpd stage when a service
overrides ``smtpd_recipient_restrictions`` with ``-o`` (as many master.cf files do):
the check must go where that service still looks, and hold only that user's mail;
and ``rearm --offender``, which lifts that block only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.incidents import make_incident
from tests.integration.harness.postfix import PostfixInstance
from tests.integration.harness.requires import wait_for
from tests.integration.harness.sasl import DovecotAuth, submit
from tests.integration.harness.sink import SmtpSink
from watcher.core import plan
from watcher.core.decide import Action
from watcher.core.settings import PostfixSettings, Settings
from watcher.responders.latchstore import LatchStore
from watcher.responders.notify.delivery import Notifier
from watcher.responders.offender import OffenderResponder
from watcher.responders.postfix import PostfixControl, frozen_from, restore
from watcher.responders.rearm import RearmError, rearm
from watcher.runtime.switch import build as build_switch

pytestmark = pytest.mark.integration


def test_a_service_override_moves_the_hold_to_the_data_stage_and_it_holds(
    root: Path, sink: SmtpSink, make_postfix: Callable[..., PostfixInstance]
) -> None:
    with DovecotAuth(root / "auth", {"bob": "bob-pw", "alice": "alice-pw"}) as auth:
        postfix = make_postfix(main=auth.main_cf())
        service = next(
            line.split()[0]
            for line in (postfix.config_dir / "master.cf").read_text().splitlines()
            if line.split()[1:2] == ["inet"] and "smtpd" in line.split()[-1:]
        )
        postfix.postconf(
            "-P", f"{service}/inet/smtpd_recipient_restrictions=permit_sasl_authenticated,reject"
        )
        postfix.postfix("reload")
        main_cf = postfix.config_dir / "main.cf"
        master_cf = (postfix.config_dir / "master.cf").read_bytes()
        original = main_cf.read_bytes()

        cfg = str(postfix.config_dir)
        responder = OffenderResponder(
            Settings(postfix=PostfixSettings(config_directory=cfg)), PostfixControl(cfg)
        )
        action = Action("contain-offender", "trip", "sasl-flood", 0, 60, 60, 60.0,
                        offender="sasl-user=bob")  # fmt: skip
        out = responder.respond(action, make_incident("i-1", "sasl-flood"))
        assert out.ok, out.summary
        assert list(out.details["applied"]) == [plan.DATA_RESTRICTIONS]  # type: ignore[call-overload]
        assert out.details["not_covered"] == []

        assert submit(postfix.smtpd_port, "bob", "bob-pw", ["a@remote.test"], "spam") == ""
        assert submit(postfix.smtpd_port, "alice", "alice-pw", ["b@remote.test"], "legit") == ""
        sink.wait_for_count(1, 20, where=lambda m: m.message()["Subject"] == "legit")
        held = wait_for(
            lambda: [e for e in postfix.queue_json() if e["queue_name"] == "hold"],
            10, "bob's message on hold", seen=postfix.queue_json,
        )  # fmt: skip
        assert [e["sender"] for e in held] == ["bob@stormwatch.test"]
        assert not [m for m in sink.messages if m.message()["Subject"] == "spam"]

        restore(PostfixControl(cfg), frozen_from(out.details))
        assert main_cf.read_bytes() == original
        assert (postfix.config_dir / "master.cf").read_bytes() == master_cf  # never edited


def test_rearm_offender_lifts_that_block_only_and_rearm_the_rest_byte_for_byte(
    root: Path, tmp_path: Path, make_postfix: Callable[..., PostfixInstance]
) -> None:
    postfix = make_postfix()
    main_cf = postfix.config_dir / "main.cf"
    original = main_cf.read_bytes()
    settings = Settings(
        state_dir=tmp_path / "state",
        postfix=PostfixSettings(config_directory=str(postfix.config_dir)),
    )
    switch = build_switch(settings, Notifier(()))
    trip = [
        Action("contain-offender", "trip", "sasl-flood", 0, 60, 60, 60.0, offender="sasl-user=bob"),
        Action("contain-postfix", "trip", "sasl-flood", 0, 60, 60, 60.0),
    ]
    switch.trip(trip, make_incident("i-1", "sasl-flood"), None)
    store, control = LatchStore(settings.state_dir), PostfixControl(str(postfix.config_dir))
    assert "check_sasl_access" in postfix.param("smtpd_recipient_restrictions")

    with pytest.raises(RearmError, match="offender is sasl-user=bob, not sasl-user=eve"):
        rearm(store, control, release=False, offender="sasl-user=eve")
    done = rearm(store, control, release=False, offender="sasl-user=bob")
    assert not done.cleared
    assert store.read().tripped
    assert "check_sasl_access" not in postfix.param("smtpd_recipient_restrictions")
    assert postfix.param("soft_bounce") == "yes"  # the scoped step stays
    assert "retry:4.7.1" in postfix.param("sender_dependent_default_transport_maps")

    done = rearm(store, control, release=False)
    assert done.cleared
    assert not store.read().tripped
    assert main_cf.read_bytes() == original
