"""A flood from one origin costs only that origin: ``contain-offender`` end to end.

Two floods, each beside honest mail: a stolen SASL account, and a script looping
over ``sendmail(1)`` as a dedicated local user.

A private Postfix authenticates SMTP clients through a private dovecot auth socket
and relays their mail to a loopback sink; ``stormwatch run`` (the bundled rules)
follows its maillog_file and pages a loopback webhook. One account's password is
stolen: it sends 300 messages at 5 a second, each to a different remote recipient,
while four other accounts go on sending ordinary mail (2 a second in all, under the
rules' warn_at per account). ``sasl-flood`` trips on that one account: its new mail
is held at smtpd, its queued mail is held by queue ID, and nothing else is touched.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness.localuser import LocalUser
from tests.integration.harness.messages import paced
from tests.integration.harness.postfix import PostfixInstance
from tests.integration.harness.requires import wait_for
from tests.integration.harness.sasl import DovecotAuth, submit
from tests.integration.harness.sink import SmtpSink
from tests.integration.harness.stormwatch import Watchers, actions, cli, config_for, latch
from tests.integration.harness.traffic import LegitTraffic
from tests.integration.harness.webhook import Webhook

pytestmark = pytest.mark.integration

OFFENDER = "mallory"
HONEST = {"alice": "alice-pw", "carol": "carol-pw", "dave": "dave-pw", "erin": "erin-pw"}
TRIP_AT = 60  # rules/sasl-flood.toml


@pytest.fixture
def auth(root: Path) -> Iterator[DovecotAuth]:
    with DovecotAuth(root / "auth", {OFFENDER: "stolen", **HONEST}) as running:
        yield running


def _spam(postfix: PostfixInstance, i: int) -> str:
    return submit(
        postfix.smtpd_port, OFFENDER, "stolen", [f"victim-{i}@dest-{i % 7}.example"], "spam"
    )


def test_a_stolen_sasl_account_is_stopped_and_everyone_elses_mail_flows(
    tmp_path: Path,
    sink: SmtpSink,
    auth: DovecotAuth,
    make_postfix: Callable[..., PostfixInstance],
    webhook: Webhook,
    watchers: Watchers,
) -> None:
    postfix = make_postfix(main=auth.main_cf())
    main_cf = postfix.config_dir / "main.cf"
    original = main_cf.read_bytes()
    state, config = config_for(tmp_path, postfix.config_dir, webhook.apprise_url)
    watchers.start("--config", str(config), "--source", f"file:{postfix.log_path}")
    wait_for(lambda: (state / "status.json").exists(), 20, "the watcher to start")

    legit = LegitTraffic(postfix, sink, rate=2, logins=HONEST).start()
    storm = threading.Thread(target=lambda: [_spam(postfix, i) for i in paced(300, 5)], daemon=True)
    storm.start()
    try:
        step, contained_at = _contained(state, watchers)
        (page,) = webhook.wait_for(1, 30, containing="TRIPPED")
        storm.join(90)
        assert not storm.is_alive()
        time.sleep(max(0.0, contained_at + 30 - time.time()))
    finally:
        legit.stop()

    spam_out = [m for m in sink.messages if m.message()["Subject"] == "spam"]
    assert TRIP_AT <= len(spam_out) <= TRIP_AT + 3
    got = legit.report(contained_at, within=15)
    assert got.submitted >= 30, got
    assert got.share >= 0.99, got
    assert got.refused == 0, got

    # the page and the outcome name the offender, where it sent, and how to release
    message = page.body["message"]
    assert f"sasl-user={OFFENDER}" in message
    assert "dest-" in message
    assert "stormwatch rearm --release-held" in message
    assert step["details"]["applied"]["smtpd_recipient_restrictions"].startswith(
        f"check_sasl_access inline:{{ {{{OFFENDER}=HOLD held by stormwatch}} }}"
    )
    assert {"freeze-postfix", "contain-postfix"}.isdisjoint(actions(state))  # step 1 held

    def offender_held() -> list[dict[str, Any]] | None:
        q = [e for e in postfix.queue_json() if e["sender"] == f"{OFFENDER}@stormwatch.test"]
        return q if q and all(e["queue_name"] == "hold" for e in q) else None

    held = wait_for(offender_held, 30, "the offender's mail on hold", seen=postfix.queue_json)
    assert held is not None
    assert len(held) + len(spam_out) == 300  # every message either left (before) or is held
    recorded = set(latch(state)["held"])
    wait_for(lambda: {e["queue_id"] for e in held} <= set(latch(state)["held"]), 15,
             "the held IDs in the latch", seen=lambda: recorded)  # fmt: skip
    assert all(
        e["sender"] != f"{OFFENDER}@stormwatch.test" for e in postfix.queue_json()
        if e["queue_name"] != "hold"
    )  # fmt: skip
    assert "Deleted:" not in postfix.log_text()

    rearm = cli("rearm", "--config", str(config))
    assert rearm.returncode == 0, rearm.stderr
    assert main_cf.read_bytes() == original
    assert len([e for e in postfix.queue_json() if e["queue_name"] == "hold"]) == len(held)


def test_a_sendmail_loop_of_one_local_user_is_stopped_and_everyone_elses_mail_flows(
    tmp_path: Path,
    sink: SmtpSink,
    postfix: PostfixInstance,
    webhook: Webhook,
    watchers: Watchers,
) -> None:
    main_cf = postfix.config_dir / "main.cf"
    original = main_cf.read_bytes()
    state, config = config_for(tmp_path, postfix.config_dir, webhook.apprise_url)
    with LocalUser("swflood") as user:
        watchers.start("--config", str(config), "--source", f"file:{postfix.log_path}")
        wait_for(lambda: (state / "status.json").exists(), 20, "the watcher to start")
        refused: list[bytes] = []

        def loop() -> None:  # a web form's script gone wrong: 5 a second
            for i in paced(300, 5):
                done = user.sendmail(postfix, f"victim-{i}@dest-{i % 7}.example", "script")
                if done.returncode:
                    refused.append(done.stderr)

        legit = LegitTraffic(postfix, sink, rate=2).start()
        storm = threading.Thread(target=loop, daemon=True)
        storm.start()
        try:
            step, contained_at = _contained(state, watchers)
            storm.join(90)
            assert not storm.is_alive()
            time.sleep(max(0.0, contained_at + 20 - time.time()))
        finally:
            legit.stop()
        uid = user.uid

    out = [m for m in sink.messages if m.message()["Subject"] == "script"]
    assert TRIP_AT <= len(out) <= TRIP_AT + 3
    got = legit.report(contained_at, within=15)
    assert got.submitted >= 10, got
    assert got.share >= 0.99, got
    assert step["details"]["offender"] == f"uid={uid}"
    assert step["details"]["applied"] == {"authorized_submit_users": "!swflood, static:anyone"}
    assert refused, "sendmail(1) went on accepting the user's mail"
    assert b"not allowed to submit mail" in refused[-1], refused[-1]
    left = [e for e in postfix.queue_json() if e["sender"] == f"swflood@{postfix.domain}"]
    assert all(e["queue_name"] == "hold" for e in left), left
    assert len(out) + len(left) + len(refused) == 300
    assert "Deleted:" not in postfix.log_text()
    rearm = cli("rearm", "--config", str(config))
    assert rearm.returncode == 0, rearm.stderr
    assert main_cf.read_bytes() == original


def _contained(state: Path, watchers: Watchers) -> tuple[dict[str, Any], float]:
    """The contain-offender outcome (it must be ok), and when it came."""
    done = wait_for(
        lambda: actions(state) if "contain-offender" in actions(state) else None,
        60,
        "the offender's containment",
        seen=lambda: watchers.output(),
    )
    assert done is not None
    step = done["contain-offender"]
    assert step["ok"], step
    return step, datetime.fromisoformat(step["at"]).timestamp()
