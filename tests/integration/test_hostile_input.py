"""A storm whose addresses are hostile trips the switch, runs exactly the configured argv,
and reaches the page and the state file verbatim: no shell ever sees log text."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests import logshapes as L
from tests.integration.harness.requires import wait_for
from tests.integration.harness.webhook import Webhook

HOSTILE_SENDERS = [
    '"$(touch /tmp/stormwatch-pwned)"@lists.example.org',
    "`touch /tmp/stormwatch-pwned`@lists.example.org",
    "a;rm -rf /;'b\"@lists.example.org",
    "x|nc 127.0.0.1 9 >y@lists.example.org",
    "{rule}{count}%s%n\\x00@lists.example.org",
    ("l" * 300) + "@lists.example.org",
]

RECORDER = """\
import json, sys
with open(sys.argv[1], "w") as f:
    json.dump(sys.argv[2:], f)
"""

RULE = """\
[[rule]]
name = "hostile-backscatter"
trip_at = 10
actions = ["command", "notify"]
[rule.match]
sender = "null"
agents = ["smtp"]
statuses = ["sent"]
remote = true
[rule.window]
seconds = 60
"""


def hostile_storm() -> list[str]:
    lines: list[str] = []
    for i in range(12):
        list_sender = HOSTILE_SENDERS[i % len(HOSTILE_SENDERS)]
        lines += L.storm_message(i / 5, i, list_sender)
    return lines


@pytest.mark.integration
def test_hostile_addresses_reach_argv_page_and_state_verbatim(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("")
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "hostile.toml").write_text(RULE)
    recorder = tmp_path / "recorder.py"
    recorder.write_text(RECORDER)
    argv_file = tmp_path / "argv.json"
    state = tmp_path / "state"
    pwned = Path("/tmp/stormwatch-pwned")
    pwned.unlink(missing_ok=True)
    with Webhook() as hook:
        config = tmp_path / "stormwatch.toml"
        command = [
            sys.executable,
            str(recorder),
            str(argv_file),
            "{rule}",
            "{trip_line}",
            "{domains}",
        ]
        config.write_text(
            f'state_dir = "{state}"\ntimezone = "UTC"\n'
            f"rules_dirs = [{json.dumps(str(rules))}]\nbundled_rules = false\n"
            f'[notify]\nurls = ["{hook.apprise_url}"]\ntimeout_seconds = 5\n'
            f"[command]\nargv = {json.dumps(command)}\n"
        )
        out = open(tmp_path / "watcher.out", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "watcher",
                "run",
                "--config",
                str(config),
                "--source",
                f"file:{log}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()
        try:
            wait_for(lambda: (state / "status.json").exists(), 20, "the watcher to start")
            lines = hostile_storm()
            with log.open("a") as f:
                f.write("\n".join(lines) + "\n")
            wait_for(argv_file.exists, 30, "the configured command to run",
                     seen=lambda: (tmp_path / "watcher.out").read_text())  # fmt: skip
            (page,) = hook.wait_for(1, 30, containing="TRIPPED")
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0

    got = json.loads(argv_file.read_text())
    sent = [ln for ln in lines if "status=sent" in ln]
    # exactly the configured argv: three arguments, the trip line as one of them, verbatim
    assert len(got) == 3
    assert got[0] == "hostile-backscatter"
    assert got[1] == sent[9]  # the tenth relayed bounce crossed trip_at
    assert got[1].count("\n") == 0
    assert got[2].split(",")[0] == "lists.example.org"
    assert not pwned.exists(), "a shell ran log text"

    # the addresses appear verbatim in the state file and in the page
    latch = json.loads((state / "latch.json").read_text())
    assert latch["incident"]["trip_line"] == sent[9]
    text = json.dumps(latch)
    message = page.body["message"]
    tripping_sender = HOSTILE_SENDERS[9 % len(HOSTILE_SENDERS)]
    assert json.dumps(tripping_sender)[1:-1] in text
    assert tripping_sender in message
