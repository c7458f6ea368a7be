"""monitoring/stormwatch.rules.yml with the real promtool: valid, and its alerts fire on
the series of a fleet where one host lost Redis and the shared count passed trip_at."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.integration.harness.requires import require_programs

pytestmark = pytest.mark.integration

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"


@pytest.mark.parametrize(
    ("command", "target"),
    [("check", "stormwatch.rules.yml"), ("test", "stormwatch.rules.test.yml")],
)
def test_promtool_accepts_the_alert_rules(command: str, target: str) -> None:
    promtool = require_programs("promtool")["promtool"]
    done = subprocess.run(
        [promtool, command, "rules", target],
        cwd=MONITORING,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
