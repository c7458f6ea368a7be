"""monitoring/: the alert rules and the Grafana dashboard name only metrics the code exports.

A metric renamed or dropped in watcher/runtime/metrics.py, or a query with a typo,
would leave an alert that never fires and a panel that stays empty: this fails
first. (promtool checks the rules' syntax and behaviour: tests/integration/
test_monitoring_real.py.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from watcher.runtime.metrics import Metrics

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
RULES = MONITORING / "stormwatch.rules.yml"
DASHBOARD = MONITORING / "grafana-stormwatch.json"
NAME = re.compile(r"\bstormwatch_[a-z_]+\b")

# every section a watcher's status can have, each key with a value
FULL_STATUS: dict[str, Any] = {
    "state": "tripped",
    "lines": 10,
    "events": 5,
    "unparsed": 0,
    "log_loss": {"reports": 1, "lines_lost": 3},
    "time_steps": {"back": 0, "largest_seconds": 0.0},
    "held": 2,
    "last_event_time": "2026-12-02T10:00:00+00:00",
    "queue_depth": 0,
    "backpressure_waits": 0,
    "correlation": {"open": 1, "evicted": 0, "expired": 0},
    "rules": {"backscatter": {"window_count": 3, "matches": 3, "trip_at": 10, "warn_at": 3}},
    "sources": {"journal": {"checkpoint_age_seconds": 1.0, "read_errors": 0, "rotated_lines": 0}},
    "fleet": {
        "host": "mx1", "redis": "up", "shared": 3, "not_shared": 0, "failures": 0,
        "queued": 0, "rules": {"backscatter": 7},
    },
}  # fmt: skip


def exported() -> set[str]:
    m = Metrics()
    m.update_from_status(FULL_STATUS)
    m.record_trip("backscatter")
    m.record_outcome("notify", True)
    text = generate_latest(m.registry).decode()
    return {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}


def _dashboard_exprs() -> list[str]:
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [t["expr"] for p in data["panels"] for t in p.get("targets", ())]


def test_the_alert_rules_name_only_exported_metrics() -> None:
    names = set(NAME.findall(RULES.read_text(encoding="utf-8")))
    assert {"stormwatch_tripped", "stormwatch_fleet_redis_up"} <= names
    assert names - exported() == set()


def test_the_dashboard_names_only_exported_metrics() -> None:
    exprs = _dashboard_exprs()
    assert len(exprs) >= 8
    names = {n for e in exprs for n in NAME.findall(e)}
    assert "stormwatch_rule_fleet_window_count" in names
    assert names - exported() == set()


def test_the_dashboard_is_a_grafana_dashboard() -> None:
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert data["uid"] == "stormwatch-fleet"
    assert isinstance(data["schemaVersion"], int)
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids))
    for p in data["panels"]:
        assert p["datasource"]["uid"] == "${datasource}"
        assert {"x", "y", "w", "h"} <= set(p["gridPos"])
