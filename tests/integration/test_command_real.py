"""The command responder running real programs, with hostile values in the incident.

The program is a small Python script that writes the argv it received as JSON.
Every string of the incident carries shell metacharacters; if any of them were
ever given to a shell, the canary files named in them would appear.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.incidents import make_incident
from watcher.core.decide import Action
from watcher.core.incident import Incident
from watcher.core.settings import CommandSettings
from watcher.responders.command import MAX_VALUE_CHARS, CommandResponder

pytestmark = pytest.mark.integration

ACTION = Action("command", "trip", "forwarding-loop", 0, 100, 100, 300.0)
RECORDER = """
import json, sys
with open(sys.argv[1], "w", encoding="utf-8") as out:
    json.dump(sys.argv[1:], out)
print("recorded", len(sys.argv) - 1, "arguments")
"""


@dataclass(frozen=True)
class Hostile:
    incident: Incident
    canaries: tuple[Path, ...]


def hostile_incident(tmp: Path) -> Hostile:
    canaries = tuple(tmp / f"pwned-{i}" for i in range(6))
    c = [str(p) for p in canaries]
    local_part = "x" * 5000  # overlong, but under the per-value cap: passed whole
    trip_line = (
        "Oct 16 17:55:52 mx postfix/smtp[4242]: 1A2B3C4D5E: "
        f"to=<\"$(touch {c[0]})\"`touch {c[1]}`;touch {c[2]}'&&touch {c[3]}'{local_part}@lists.example.org>, "
        "relay=mx.example.org[192.0.2.7]:25, dsn=2.0.0, status=sent (250 ok)\n"
        f"second line | touch {c[4]} > /dev/null \\ {{rule}} {{0}} %s $HOME ${{IFS}}"
    )
    return Hostile(
        make_incident(
            id=f"20111016T085552Z-$(touch {c[5]})",
            rule="forwarding-loop; reboot",
            description="",
            count=1000,
            threshold=100,
            window_seconds=300.0,
            first_time="2011-10-16T17:52:52+09:00",
            trip_time="2011-10-16T17:55:52+09:00 `id`",
            trip_line=trip_line,
            top_domains=(("lists.example.org", 612), ("a b;c$(x)", 3), ('q"uote', 1)),
            host="mx1 && touch /tmp/stormwatch-never",
        ),
        canaries,
    )


def test_the_program_gets_exactly_the_filled_argv_and_no_shell_runs(tmp_path: Path) -> None:
    script = tmp_path / "record.py"
    script.write_text(RECORDER, encoding="utf-8")
    record = tmp_path / "argv.json"
    hostile = hostile_incident(tmp_path)
    inc = hostile.incident
    argv = (
        sys.executable,
        str(script),
        str(record),
        "--rule={rule}",
        "{count}/{threshold} in {window}s",
        "{incident}",
        "{trip_time}",
        "{first_time}",
        "--host",
        "{host}",
        "{trip_line}",
        "{domains}",
        "{{literal braces}}",
    )
    responder = CommandResponder(CommandSettings(argv=argv, timeout_seconds=20))
    outcome = responder.respond(ACTION, inc)

    assert outcome.ok, outcome
    assert outcome.details["returncode"] == 0
    assert outcome.details["stdout"] == "recorded 11 arguments\n"
    received = json.loads(record.read_text(encoding="utf-8"))
    assert received == [
        str(record),
        f"--rule={inc.rule}",
        "1000/100 in 300s",
        inc.id,
        inc.trip_time,
        inc.first_time,
        "--host",
        inc.host,
        inc.trip_line,
        'lists.example.org,a b;c$(x),q"uote',
        "{literal braces}",
    ]
    assert outcome.details["argv"] == [sys.executable, str(script), *received]
    assert len(inc.trip_line) < MAX_VALUE_CHARS
    assert [p for p in hostile.canaries if p.exists()] == [], "a shell ran"
    assert not Path("/tmp/stormwatch-never").exists()
    json.dumps(outcome.details)


def test_a_failing_program_reports_its_exit_code_and_stderr(tmp_path: Path) -> None:
    code = "import sys; print('about to fail'); sys.stderr.write('pager: 503 from gateway\\n'); sys.exit(4)"
    outcome = CommandResponder(CommandSettings(argv=(sys.executable, "-c", code))).respond(
        ACTION, hostile_incident(tmp_path).incident
    )
    assert not outcome.ok
    assert outcome.summary == f"{sys.executable} exited 4: pager: 503 from gateway"
    assert outcome.details["stdout"] == "about to fail\n"
    assert outcome.details["stderr"] == "pager: 503 from gateway\n"


def test_a_program_that_hangs_is_killed_at_the_timeout(tmp_path: Path) -> None:
    code = "import sys, time; print('started', flush=True); time.sleep(60)"
    settings = CommandSettings(argv=(sys.executable, "-c", code), timeout_seconds=0.5)
    outcome = CommandResponder(settings).respond(ACTION, hostile_incident(tmp_path).incident)
    assert not outcome.ok
    assert outcome.summary == f"{sys.executable} timed out after 0.5 s (killed)"
    assert outcome.details["timed_out"] is True
    seconds = outcome.details["seconds"]
    assert isinstance(seconds, float)
    assert 0.5 <= seconds < 10
    assert outcome.details["stdout"] == "started\n"


def test_a_missing_program_is_an_outcome(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-program")
    outcome = CommandResponder(CommandSettings(argv=(missing, "{rule}"))).respond(
        ACTION, hostile_incident(tmp_path).incident
    )
    assert not outcome.ok
    assert outcome.summary == f"command not found: {missing}"


def test_a_program_that_is_not_executable_is_an_outcome(tmp_path: Path) -> None:
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    script.chmod(0o644)
    outcome = CommandResponder(CommandSettings(argv=(str(script),))).respond(
        ACTION, hostile_incident(tmp_path).incident
    )
    assert not outcome.ok
    assert outcome.summary == f"{script} could not start: Permission denied"
