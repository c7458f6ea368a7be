"""contain-offender's choice of smtpd stage, on a real Postfix whose submission service
overrides ``smtpd_recipient_restrictions`` with ``-o`` (as many master.cf files do):
the check must go where that service still looks, and hold only that user's mail."""

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
from watcher.responders.offender import OffenderResponder
from watcher.responders.postfix import PostfixControl, frozen_from, restore

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
