"""A trip costs only the storm: the escalation ladder end to end, with real parts.

A private Postfix relays to a loopback sink (what escaped, and the legitimate
mail delivered); ``stormwatch run`` follows its maillog_file and pages a
loopback webhook. Local users keep sending to remote recipients (2 a second)
the whole time, and the tests assert what the trip cost them.

* The storm comes in by SMTP, 5 list posts a second for a minute, into a
  forwarding loop: the scoped step contains it (at most 3 bounces out, the
  storm's mail held, nothing deleted) while at least 99 % of the legitimate
  mail submitted after the trip is delivered within 15 s.
* The storm's null-sender mail rides a ``transport_maps`` route, which the
  scoped step cannot reach: the ladder escalates to the freeze, and pages it.
  The host's own ``sender_dependent_default_transport_maps`` stays in force
  behind stormwatch's table and is back exactly after the re-arm.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import loop_post
from tests.integration.harness.messages import paced
from tests.integration.harness.postfix import PostfixInstance
from tests.integration.harness.requires import wait_for
from tests.integration.harness.sink import SmtpSink
from tests.integration.harness.stormwatch import Watchers, actions, cli, config_for, latch
from tests.integration.harness.traffic import LegitTraffic
from tests.integration.harness.webhook import Webhook

pytestmark = pytest.mark.integration


def _at(action: dict[str, Any]) -> float:
    return datetime.fromisoformat(action["at"]).timestamp()


def _in_background(target: Any) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_an_smtp_storm_is_contained_while_everyone_elses_mail_flows(
    tmp_path: Path,
    sink: SmtpSink,
    postfix: PostfixInstance,
    webhook: Webhook,
    watchers: Watchers,
) -> None:
    main_cf = postfix.config_dir / "main.cf"
    original = main_cf.read_bytes()
    state, config = config_for(tmp_path, postfix.config_dir, webhook.apprise_url)
    watchers.start("--config", str(config), "--source", f"file:{postfix.log_path}")
    wait_for(lambda: (state / "status.json").exists(), 20, "the watcher to start")

    legit = LegitTraffic(postfix, sink, rate=2).start()
    storm = _in_background(lambda: [loop_post(postfix, i) for i in paced(300, 5)])
    try:
        done = wait_for(
            lambda: actions(state) if "contain-postfix" in actions(state) else None,
            60,
            "the scoped containment",
            seen=lambda: watchers.output(),
        )
        assert done is not None
        assert done["contain-postfix"]["ok"], done
        contained_at = _at(done["contain-postfix"])
        (page,) = webhook.wait_for(1, 30, containing="TRIPPED")
        assert "outbound mail from other senders keeps flowing" in page.body["message"]
        storm.join(90)  # the whole minute of it
        assert not storm.is_alive()
        time.sleep(max(0.0, contained_at + 80 - time.time()))
    finally:
        legit.stop()

    got = legit.report(contained_at, within=15)
    assert got.submitted >= 100, got
    assert got.share >= 0.99, got
    assert got.refused == 0, got
    assert len(sink.bounces()) <= 3
    assert "freeze-postfix" not in actions(state)  # step 1 was enough
    assert "defer_transports" not in postfix.postconf("-n")

    def all_held() -> list[dict[str, Any]] | None:
        q = [
            e
            for e in postfix.queue_json()
            if e["sender"] == "MAILER-DAEMON"
            or any(r["address"] == postfix.loop_address for r in e["recipients"])
        ]
        return q if q and all(e["queue_name"] == "hold" for e in q) else None

    held = wait_for(all_held, 30, "the storm's mail on hold", seen=postfix.queue_json)
    assert held is not None
    assert len(held) > 250  # the posts held at smtpd among them
    assert "Deleted:" not in postfix.log_text()

    postfix.end_loop()
    rearm = cli("rearm", "--config", str(config))
    assert rearm.returncode == 0, rearm.stderr
    assert main_cf.read_bytes() == original


def test_bounces_on_a_transport_maps_route_escalate_to_the_freeze(
    tmp_path: Path,
    sink: SmtpSink,
    make_postfix: Any,
    webhook: Webhook,
    watchers: Watchers,
) -> None:
    own_map = "inline:{ {alice@stormwatch.test=smtp} }"  # the host's own, kept behind ours
    postfix: PostfixInstance = make_postfix(
        main={
            "transport_maps": f"inline:{{ {{lists.example.org=smtp:{sink.relayhost}}} }}",
            "sender_dependent_default_transport_maps": own_map,
        }
    )
    main_cf = postfix.config_dir / "main.cf"
    original = main_cf.read_bytes()
    state, config = config_for(tmp_path, postfix.config_dir, webhook.apprise_url)
    watchers.start("--config", str(config), "--source", f"file:{postfix.log_path}")
    wait_for(lambda: (state / "status.json").exists(), 20, "the watcher to start")

    def relayed_bounces() -> None:  # null-sender mail relayed for the list, 4 a second
        for i in paced(160, 4):
            if "freeze-postfix" in actions(state):
                return
            postfix.inject("", "list-bounces@lists.example.org", subject=f"bounce {i}")

    storm = _in_background(relayed_bounces)
    done = wait_for(
        lambda: actions(state) if "freeze-postfix" in actions(state) else None,
        60,
        "the escalation to the freeze",
        seen=lambda: watchers.output(),
    )
    storm.join(30)
    assert done is not None
    contain, freeze = done["contain-postfix"], done["freeze-postfix"]
    assert contain["ok"], done
    assert freeze["ok"], done
    planned = {a["kind"]: a for a in latch(state)["planned"]}
    assert planned["contain-postfix"]["severity"] == "trip"
    assert planned["freeze-postfix"]["severity"] == "escalate"
    assert _at(freeze) > _at(contain)
    # step 1 kept the host's own map, behind stormwatch's table
    sdtm = contain["details"]["applied"]["sender_dependent_default_transport_maps"]
    assert sdtm.startswith("inline:{ {<>=retry:4.7.1 held by stormwatch} }")
    assert sdtm.endswith(own_map)
    assert "smtp" in postfix.param("defer_transports").split(",")

    (page,) = webhook.wait_for(1, 30, containing="ESCALATED")
    assert "frozen" in page.body["title"]
    status = cli("status", "--config", str(config))
    assert "escalat" in status.stdout.lower() or "frozen" in status.stdout.lower(), status.stdout

    rearm = cli("rearm", "--config", str(config))
    assert rearm.returncode == 0, rearm.stderr
    assert main_cf.read_bytes() == original
    assert postfix.param("sender_dependent_default_transport_maps") == own_map
