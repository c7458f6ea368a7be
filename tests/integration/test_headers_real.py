"""Header formats with the real thing: ``stormwatch replay`` as a process on files in
each format, and a live ``stormwatch run`` following a file in a format it cannot read,
which pages "blind" to a loopback webhook.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from tests.headershapes import SHAPES, life, tai64n
from tests.integration.harness.journal import Journal, journal_tools
from tests.integration.harness.requires import wait_for
from tests.integration.harness.stormwatch import Watchers, cli
from tests.integration.harness.webhook import Webhook

pytestmark = pytest.mark.integration


def _config(tmp_path: Path, extra: str = "") -> Path:
    config = tmp_path / "stormwatch.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\ntimezone = "UTC"\n{extra}')
    return config


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_replay_reads_each_format_and_says_which(tmp_path: Path, shape: str) -> None:
    log = tmp_path / "mail.log"
    log.write_text("\n".join(life(SHAPES[shape], 30)) + "\n")
    done = cli("replay", "--json", "--no-progress", "--year", "2011",
               "--config", str(_config(tmp_path)), str(log))  # fmt: skip
    assert done.returncode == 1, done.stderr  # the storm trips the switch
    v = json.loads(done.stdout)
    assert (v["events"], v["unreadable"], v["blind"]) == (120, 0, False)
    want = {
        "short-iso": "rfc3339",
        "short-iso-precise": "rfc3339",
        "rfc3339-z": "rfc3339",
        "loose-tag": "classic",
        "bare-tag": "rfc3339+bare-tag",
        "rfc5424-sd-bom": "rfc5424",
        "classic-unpadded": "classic",
    }.get(shape, shape)  # Oct 16: no day to pad; fmt: skip
    assert v["inputs"][0]["format"] == want
    assert v["trip"]["rule"] == "backscatter"


def test_replay_of_an_unknown_format_says_blind_and_exits_4(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("\n".join(life(tai64n, 30)) + "\n")
    done = cli("replay", "--no-progress", "--config", str(_config(tmp_path)), str(log))
    assert done.returncode == 4, done.stdout + done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith("BLIND: 120 Postfix lines (100%) had a header stormwatch cannot")
    assert "unknown header format: @4000" in done.stdout
    assert "Header format of" in done.stdout
    assert ": unknown" in done.stdout


def test_run_pages_blind_when_it_reads_no_postfix_line(
    tmp_path: Path, webhook: Webhook, watchers: Watchers
) -> None:
    log = tmp_path / "mail.log"
    log.write_text("\n".join(life(SHAPES["rfc5424"])) + "\n")  # the first start: from the end
    config = _config(tmp_path, f'[notify]\nurls = ["{webhook.apprise_url}"]\ntimeout_seconds = 5\n')
    watchers.start("--config", str(config), "--source", f"file:{log}")
    # status.json is written once the sources are open: lines appended now are read
    wait_for(lambda: (tmp_path / "state" / "status.json").exists(), 30, "the watcher's status")
    with log.open("a") as f:  # known, then unknown
        f.write("\n".join(life(SHAPES["rfc5424"])) + "\n")
    with log.open("a") as f:
        f.write("\n".join(life(tai64n, 4)) + "\n")
    (page,) = webhook.wait_for(1, 30, containing="blind")
    assert "16 lines in an unknown format since" in page.body["title"]
    assert "unknown header format" in page.body["message"]
    assert "@4000" in page.body["message"]
    status = tmp_path / "state" / "status.json"

    def counted() -> dict[str, object] | None:
        st: dict[str, object] = json.loads(status.read_text())
        return st if st.get("unreadable") == 16 else None

    st = wait_for(counted, 30, "status.json counting the unreadable lines")
    assert st is not None
    assert st["header_formats"] == {f"file:{log}": "unknown"}
    out = watchers.output()
    assert "header format rfc5424" in out
    assert "header format changed from rfc5424 to unknown" in out


@pytest.mark.parametrize(
    ("output", "found"),
    [
        ("short", "classic"),
        ("short-precise", "classic-precise"),
        ("short-iso", "rfc3339"),
        ("short-iso-precise", "rfc3339"),
        ("short-full", "short-full"),
        ("short-unix", "short-unix"),
    ],
)
def test_replay_reads_what_journalctl_itself_prints(
    tmp_path: Path, output: str, found: str
) -> None:
    """The incident's lines written into a real journal file, printed by the real
    journalctl in each text output, then replayed: the same events as the classic file."""
    _, journalctl = journal_tools()
    journal = Journal(tmp_path / "mail.journal", journal_tools()[0])
    records: list[tuple[datetime, str, str, str]] = []

    def keep(d: datetime, program: str, pid: str, message: str) -> str:
        records.append((d, program, pid, message))
        return ""

    life(keep, 30)
    entries = []
    for d, program, pid, message in records:
        entry = journal.entry(message, program, _PID=pid, _UID="0")
        entry["__REALTIME_TIMESTAMP"] = str(int(d.timestamp() * 1_000_000))
        entries.append(entry)
    journal.append(*entries)
    log = tmp_path / "mail.log"
    with log.open("wb") as f:
        subprocess.run(
            [journalctl, "--file", str(journal.path), "-o", output, "--no-pager", "--utc"],
            stdout=f, check=True, timeout=30, env={**os.environ, "TZ": "UTC"},
        )  # fmt: skip
    done = cli("replay", "--json", "--no-progress", "--year", "2011",
               "--config", str(_config(tmp_path)), str(log))  # fmt: skip
    assert done.returncode == 1, log.read_text()[:500] + done.stderr
    v = json.loads(done.stdout)
    assert (v["events"], v["unreadable"], v["blind"]) == (120, 0, False), log.read_text()[:300]
    assert v["inputs"][0]["format"] == found
    assert v["trip"]["rule"] == "backscatter"
