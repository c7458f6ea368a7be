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
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness.fetchmail import FetchmailDaemon
from tests.integration.harness.pop3 import DovecotPop3
from tests.integration.harness.postfix import PostfixInstance
from tests.integration.harness.procs import free_port
from tests.integration.harness.requires import wait_for
from tests.integration.harness.sink import SmtpSink
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


def stormwatch(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watcher", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with Webhook() as hook:
        yield hook


@pytest.fixture
def watcher_process(root: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        log = open(root / f"stormwatch-{len(started)}.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [sys.executable, "-m", "watcher", "run", *args], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def latch(state: Path) -> dict[str, Any]:
    path = state / "latch.json"
    return json.loads(path.read_text()) if path.exists() else {"tripped": False}


def storm_queue(postfix: PostfixInstance) -> list[dict[str, Any]]:
    return [
        e
        for e in postfix.queue_json()
        if e["sender"] == "MAILER-DAEMON"
        or any("forwarding loop" in r.get("delay_reason", "") for r in e["recipients"])
    ]


@pytest.mark.integration
def test_storm_through_fetchmail_is_stopped_paged_held_and_rearmed(
    root: Path,
    sink: SmtpSink,
    postfix: PostfixInstance,
    pop3: DovecotPop3,
    webhook: Webhook,
    watcher_process: Callable[..., subprocess.Popen[bytes]],
) -> None:
    main_cf = postfix.config_dir / "main.cf"
    original_main_cf = main_cf.read_bytes()
    state = root / "state"
    metrics_port = free_port()
    config = write_config(root / "stormwatch.toml", state, postfix, webhook, metrics_port)
    assert stormwatch("check-config", "--config", str(config)).returncode == 0

    watcher = watcher_process("--config", str(config), "--source", f"file:{postfix.log_path}")
    wait_for(lambda: (state / "status.json").exists(), 20, "the watcher to start")

    assert pop3.load_list_mail(STORM) == STORM
    fetchmail = FetchmailDaemon(
        root / "fetchmail",
        pop3_port=pop3.port,
        pop3_user=pop3.user,
        pop3_password=pop3.password,
        smtp_port=postfix.smtpd_port,
        deliver_to=postfix.loop_address,
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
        assert set(done) == {"freeze-postfix", "hold-bounces", "stop-fetchmail", "notify"}
        assert all(a["ok"] for a in done.values()), done
        incident = latch(state)["incident"]
        assert incident["rule"] == "forwarding-loop"

        # The page arrives, with a summary a human can act on.
        (page,) = webhook.wait_for(1, 30, containing="TRIPPED")
        assert "forwarding-loop" in page.body["title"]
        message = page.body["message"]
        assert "freeze-postfix" in message
        assert "stop-fetchmail" in message
        assert "mail forwarding loop for looper@stormwatch.test" in message
        assert "stormwatch rearm" in message

        # fetchmail got SIGINT and exited.
        assert fetchmail.wait(20) == 0
        assert re.search(r"terminated with signal 2", fetchmail.output())
        stopped = done["stop-fetchmail"]["details"]
        assert fetchmail.pid in [p["pid"] for p in stopped["processes"]]

        # Postfix is frozen.
        assert postfix.param("soft_bounce") == "yes"
        assert "smtp" in postfix.param("defer_transports").split(",")

        # Every storm message still queued ends up on hold (sweeps continue while tripped)...
        def all_held() -> list[dict[str, Any]] | None:
            queued = storm_queue(postfix)
            return queued if queued and all(e["queue_name"] == "hold" for e in queued) else None

        held = wait_for(
            all_held, 30, "every storm message on hold", seen=lambda: storm_queue(postfix)
        )
        assert held is not None
        # ...and nothing was deleted: every looping message either bounced, its bounce then
        # sent out or still queued, or it is still queued itself (soft-bounced). (A bounce
        # held while smtp was already delivering it is both: Postfix finishes the delivery.)
        log = postfix.log_text()
        looped = set(
            re.findall(r"(\w+): to=<looper@stormwatch\.test>, .*mail forwarding loop", log)
        )
        bounce_of = dict(re.findall(r"(\w+): sender non-delivery notification: (\w+)", log))
        sent = set(
            re.findall(
                r"(\w+): to=<[^>]*>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*status=sent", log
            )
        )
        queued = {e["queue_id"] for e in postfix.queue_json()}
        lost = [q for q in looped if q not in queued and not {bounce_of.get(q)} & (sent | queued)]
        assert not lost, f"looping messages neither queued nor bounced out: {lost}"
        assert "Deleted:" not in log
        escaped = sink.bounces()
        assert len(escaped) == len({bounce_of[q] for q in looped if q in bounce_of} & sent)
        assert len(escaped) < len(looped)
        # The incident folder: the report names the trip, and (once rewritten with the
        # lines logged up to the freeze) counts exactly the bounces the sink received.
        folder = state / "incidents" / incident["id"]
        assert {p.name for p in folder.iterdir()} >= {
            "report.md", "report.json", "timeline.svg", "evidence.log"
        }  # fmt: skip
        assert str(folder) in message

        def backscatter_in_report() -> int | None:
            report = json.loads((folder / "report.json").read_text())
            others = {o["name"]: o for o in report["other_rules"]}
            n = others["backscatter"]["matches"]
            return n if n == len(escaped) else None

        wait_for(backscatter_in_report, 30, "the report to count the escaped bounces",
                 seen=lambda: (folder / "report.json").read_text()[:300])  # fmt: skip

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
            'stormwatch_responder_outcomes_total{kind="freeze-postfix",result="ok"} 1.0' in metrics
        )
        lines_read = re.search(r"^stormwatch_lines_read_total (\S+)$", metrics, re.MULTILINE)
        assert lines_read is not None
        assert float(lines_read.group(1)) > 0
        # the latch records what it held
        assert {e["queue_id"] for e in held} <= set(latch(state)["held"])
    finally:
        fetchmail.stop()

    # Re-arm: main.cf back byte for byte, held mail released, an all-clear page.
    rearm = stormwatch("rearm", "--release-held", "--config", str(config))
    assert rearm.returncode == 0, rearm.stderr
    assert main_cf.read_bytes() == original_main_cf
    assert "restored to its text before the freeze" in rearm.stdout
    assert latch(state)["tripped"] is False
    held_ids = {e["queue_id"] for e in held}
    assert not [
        e for e in postfix.queue_json() if e["queue_id"] in held_ids and e["queue_name"] == "hold"
    ]
    postfix.wait_for_log(rf"Released from hold: {len(held_ids)} message", 15)
    webhook.wait_for(1, 30, containing="re-armed")
    assert (state / "incidents" / incident["id"] / "latch.json").exists()
    # a second rearm is safe
    again = stormwatch("rearm", "--config", str(config))
    assert again.returncode == 0
    assert "not tripped" in again.stdout

    watcher.send_signal(signal.SIGTERM)
    assert watcher.wait(20) == 0
