"""Postfix facts the per-offender step (issue 13) is to stand on, checked on a real,
private Postfix with dovecot SASL: one SASL user's new mail can be held, everyone
else's leaves, and the log names the origin the flood rules count by."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.harness.postfix import PostfixInstance
from tests.integration.harness.requires import wait_for
from tests.integration.harness.sasl import DovecotAuth, submit
from tests.integration.harness.sink import SmtpSink
from watcher.core.origin import parse_origin

pytestmark = pytest.mark.integration

HOLD_BOB = "inline:{ {bob=HOLD held by stormwatch} }"


def test_check_sasl_access_hold_holds_one_sasl_user_and_lets_the_other_through(
    root: Path, sink: SmtpSink
) -> None:
    with DovecotAuth(root / "auth", {"bob": "bob-pw", "alice": "alice-pw"}) as auth:
        postfix = PostfixInstance(root / "postfix", relayhost=sink.relayhost, main=auth.main_cf())
        with postfix:
            assert submit(postfix.smtpd_port, "bob", "bob-pw", ["a@remote.test"], "before") == ""
            sink.wait_for_count(1, 20)
            origins = [
                parse_origin(line.split(": ", 2)[2])
                for line in postfix.log_lines()
                if "/smtpd[" in line and ": client=" in line
            ]
            assert [(o.kind, o.sasl_user) for o in origins if o] == [("sasl", "bob")]
            restrictions = postfix.param("smtpd_recipient_restrictions")
            postfix.postconf(
                "-e", f"smtpd_recipient_restrictions=check_sasl_access {HOLD_BOB}, {restrictions}"
            )
            postfix.postfix("reload")
            wait_for(lambda: "reload" in postfix.log_text(), 10, "the reload")
            for i in range(3):
                assert (
                    submit(postfix.smtpd_port, "bob", "bob-pw", [f"s{i}@remote.test"], "spam") == ""
                )
                assert (
                    submit(postfix.smtpd_port, "alice", "alice-pw", [f"l{i}@remote.test"], "legit")
                    == ""
                )
            sink.wait_for_count(
                4, 20, where=lambda m: m.message()["Subject"] in ("before", "legit")
            )
            wait_for(lambda: sum(e["queue_name"] == "hold" for e in postfix.queue_json()) == 3,
                     10, "bob's three messages on hold")  # fmt: skip
            assert [
                m.message()["Subject"] for m in sink.messages if m.message()["Subject"] == "spam"
            ] == []
            held = [e for e in postfix.queue_json() if e["queue_name"] == "hold"]
            assert {e["sender"] for e in held} == {"bob@stormwatch.test"}
            assert "SASL login name held by stormwatch" in postfix.log_text()
