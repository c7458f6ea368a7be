"""The product, end to end, with real parts only.

A private Postfix with a forwarding loop relays to a loopback SMTP sink (what
"escaped"); a real fetchmail daemon pulls list mail from a private dovecot
POP3 server into it; ``stormwatch run`` runs as a real process following the
instance's maillog_file and pages a loopback HTTP endpoint through apprise.
The test asserts that the switch trips, the page arrives with the summary,
fetchmail got SIGINT and exited, Postfix is frozen, every storm message still
queued is on hold and none was deleted; then ``stormwatch rearm
--release-held`` puts main.cf back byte for byte and releases the held mail.
"""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness.fetchmail import FetchmailDaemon
from tests.integration.harness.pop3 import DovecotPop3
from tests.integration.harness.postfix import PostfixInstance
from tests.integration.harness.procs import free_port
from tests.integration.harness.requires import wait_for
from tests.integration.harness.sink import SmtpSink
from tests.integration.harness.stormwatch import Watchers, cli, latch
from tests.integration.harness.traffic import LegitTraffic
from tests.integration.harness.webhook import Webhook

STORM = 40  # list posts waiting on the POP3 server


def write_config(
    path: Path, state: Path, postfix: PostfixInstance, hook: Webhook, metrics_port: int
) -> Path:
    path.write_text(
        f"""\
state_dir = "{state}"

[metrics]
enabled = true
port = {metrics_port}

[postfix]
config_directory = "{postfix.config_dir}"

[notify]
urls = ["{hook.apprise_url}"]
timeout_seconds = 5
retries = 1
backoff_seconds = 0.5

[fetchmail]
sigterm_after_seconds = 5
"""
    )
    return path


def storm_queue(postfix: PostfixInstance) -> list[dict[str, Any]]:
    """Bounces, looping originals, and new mail for the looping address (held at smtpd)."""
    return [
        e
        for e in postfix.queue_json()
        if e["sender"] == "MAILER-DAEMON"
        or any("forwarding loop" in r.get("delay_reason", "") for r in e["recipients"])
        or any(r["address"] == postfix.loop_address for r in e["recipients"])
    ]


@pytest.mark.integration
def test_storm_through_fetchmail_is_stopped_paged_held_and_rearmed(
    root: Path,
    sink: SmtpSink,
    postfix: PostfixInstance,
    pop3: DovecotPop3,
    webhook: Webhook,
    watchers: Watchers,
) -> None:
    main_cf = postfix.config_dir / "main.cf"
    original_main_cf = main_cf.read_bytes()
    state = root / "state"
    metrics_port = free_port()
    config = write_config(root / "stormwatch.toml", state, postfix, webhook, metrics_port)
    assert cli("check-config", "--config", str(config)).returncode == 0

    watcher = watchers.start("--config", str(config), "--source", f"file:{postfix.log_path}")
    wait_for(lambda: (state / "status.json").exists(), 20, "the watcher to start")

    assert pop3.load_list_mail(STORM) == STORM
    legit = LegitTraffic(postfix, sink, rate=2).start()  # local users' mail, all along
    fetchmail = FetchmailDaemon(
        root / "fetchmail",
        pop3_port=pop3.port,
        pop3_user=pop3.user,
        pop3_password=pop3.password,
        smtp_port=postfix.smtpd_port,
        deliver_to=postfix.loop_address,
        fetchlimit=3,  # 3 a second, as a mailbox being filled would be drained
    ).start()
    try:
        # The switch trips and records every action.
        done = wait_for(
            lambda: (
                {a["kind"]: a for a in latch(state).get("actions", ())}
                if len(latch(state).get("actions", ())) >= 4
                else None
            ),
            60,
            "the trip's four actions in latch.json",
            seen=lambda: latch(state),
        )
        assert done is not None
        assert latch(state)["tripped"] is True
        assert set(done) == {"contain-postfix", "hold-bounces", "stop-fetchmail", "notify"}
        assert all(a["ok"] for a in done.values()), done
        contained_at = datetime.fromisoformat(done["contain-postfix"]["at"]).timestamp()
        incident = latch(state)["incident"]
        assert incident["rule"] == "forwarding-loop"

        # The page arrives, with a summary a human can act on.
        (page,) = webhook.wait_for(1, 30, containing="TRIPPED")
        assert "forwarding-loop" in page.body["title"]
        message = page.body["message"]
        assert "contain-postfix" in message
        assert "outbound mail from other senders keeps flowing" in message
        assert "stop-fetchmail" in message
        assert "mail forwarding loop for looper@stormwatch.test" in message
        assert "stormwatch rearm" in message

        # fetchmail got SIGINT and exited (13: its last poll had reached the fetch limit).
        assert fetchmail.wait(20) in (0, 13)
        assert re.search(r"terminated with signal 2", fetchmail.output())
        stopped = done["stop-fetchmail"]["details"]
        assert fetchmail.pid in [p["pid"] for p in stopped["processes"]]

        # The storm's mail is contained, not the host: no transport is deferred.
        assert postfix.param("soft_bounce") == "yes"
        assert "held by stormwatch" in postfix.param("sender_dependent_default_transport_maps")
        assert "defer_transports" not in postfix.postconf("-n")
        assert "looper@stormwatch.test=HOLD" in postfix.param("smtpd_recipient_restrictions")

        # Every storm message still queued ends up on hold (sweeps continue while tripped)...
        def all_held() -> list[dict[str, Any]] | None:
            queued = storm_queue(postfix)
            return queued if all(e["queue_name"] == "hold" for e in queued) else None

        settled = wait_for(
            lambda: (all_held(),) if all_held() is not None else None,
            30,
            "every storm message still queued on hold",
            seen=lambda: storm_queue(postfix),
        )
        assert settled is not None
        held = settled[0] or []

        # ...and nothing was deleted: every looping message either bounced, its bounce then
        # sent out or still queued, or it is still queued itself (soft-bounced). (A bounce
        # held while smtp was already delivering it is both: Postfix finishes the delivery.)
        def logged() -> tuple[str, set[str], dict[str, str], set[str], list[Any]] | None:
            """The log, once it shows every bounce the sink has (smtp logs status=sent
            after the sink's reply: a moment after the sink counted it)."""
            log = postfix.log_text()
            looped = set(
                re.findall(r"(\w+): to=<looper@stormwatch\.test>, .*mail forwarding loop", log)
            )
            bounce_of = dict(re.findall(r"(\w+): sender non-delivery notification: (\w+)", log))
            sent = set(
                re.findall(
                    r"(\w+): to=<[^>]*>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*status=sent",
                    log,
                )
            )
            out = {bounce_of[q] for q in looped if q in bounce_of} & sent
            escaped = sink.bounces()
            return (log, looped, bounce_of, sent, escaped) if len(out) >= len(escaped) else None

        found = wait_for(logged, 10, "the log to show every bounce the sink received")
        assert found is not None
        log, looped, bounce_of, sent, escaped = found
        queued = {e["queue_id"] for e in postfix.queue_json()}
        lost = [q for q in looped if q not in queued and not {bounce_of.get(q)} & (sent | queued)]
        assert not lost, f"looping messages neither queued nor bounced out: {lost}"
        assert "Deleted:" not in log
        assert len(escaped) == len({bounce_of[q] for q in looped if q in bounce_of} & sent)
        assert len(escaped) <= 3  # the goal: at most 3 bounces out
        # The incident folder: the report names the trip, and (once rewritten with the
        # lines logged up to the freeze) counts exactly the bounces the sink received.
        folder = state / "incidents" / incident["id"]
        assert {p.name for p in folder.iterdir()} >= {
            "report.md", "report.json", "timeline.svg", "evidence.log"
        }  # fmt: skip
        assert str(folder) in message

        def backscatter_in_report() -> bool | None:
            report = json.loads((folder / "report.json").read_text())
            others = {o["name"]: o for o in report["other_rules"]}
            return True if others["backscatter"]["matches"] == len(escaped) else None

        def counted() -> object:
            report = json.loads((folder / "report.json").read_text())
            others = {o["name"]: o["matches"] for o in report["other_rules"]}
            return {"report": others, "sink": len(escaped), "now": len(sink.bounces())}

        wait_for(backscatter_in_report, 30, "the report to count the escaped bounces",
                 seen=counted)  # fmt: skip

        # The metrics endpoint, scraped over loopback while tripped.
        def scrape() -> str | None:
            url = f"http://127.0.0.1:{metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as r:
                text: str = r.read().decode()
            return text if "stormwatch_tripped 1.0" in text else None

        metrics = wait_for(scrape, 20, "the metrics to show the trip")
        assert metrics is not None
        assert 'stormwatch_trips_total{rule="forwarding-loop"} 1.0' in metrics
        assert (
            'stormwatch_responder_outcomes_total{kind="contain-postfix",result="ok"} 1.0' in metrics
        )
        lines_read = re.search(r"^stormwatch_lines_read_total (\S+)$", metrics, re.MULTILINE)
        assert lines_read is not None
        assert float(lines_read.group(1)) > 0
        # the latch records what it held
        assert {e["queue_id"] for e in held} <= set(latch(state)["held"])

        # A trip costs only the storm: local users' mail submitted after it is delivered.
        time.sleep(max(0.0, contained_at + 35 - time.time()))  # 20 s of them, 15 s each to go
        got = legit.report(contained_at, within=15)
        assert got.submitted >= 30, got
        assert got.share >= 0.99, got
        assert got.refused == 0, got
        assert len(sink.bounces()) <= 3
    finally:
        legit.stop()
        fetchmail.stop()

    # Re-arm, once the loop is fixed (released looping mail would loop again, and
    # trip again): main.cf back byte for byte, held mail released, an all-clear page.
    postfix.end_loop()
    # what is on hold now (the sweeps may have held more since the snapshot above)
    on_hold = [e for e in postfix.queue_json() if e["queue_name"] == "hold"]
    rearm = cli("rearm", "--release-held", "--config", str(config))
    assert rearm.returncode == 0, rearm.stderr
    assert main_cf.read_bytes() == original_main_cf
    assert "restored to its text before the freeze" in rearm.stdout
    assert latch(state)["tripped"] is False
    # the bounces and the smtpd-held posts are released; the looping copies stay held
    # (each carries Delivered-To: looper and would only loop and bounce again)
    looping = {e["queue_id"] for e in on_hold if "forwarding loop" in str(e["recipients"])}
    released = {e["queue_id"] for e in on_hold} - looping
    assert {e["queue_id"] for e in postfix.queue_json() if e["queue_name"] == "hold"} == looping
    if looping:
        assert "looping cop(ies) stay on hold" in rearm.stdout
    if released:
        postfix.wait_for_log(rf"Released from hold: {len(released)} message", 15)
    webhook.wait_for(1, 30, containing="re-armed")
    assert (state / "incidents" / incident["id"] / "latch.json").exists()
    # a second rearm is safe
    again = cli("rearm", "--config", str(config))
    assert again.returncode == 0
    assert "not tripped" in again.stdout

    watcher.send_signal(signal.SIGTERM)
    assert watcher.wait(20) == 0
