"""replay and report show the flood rules' counts per origin (SASL user, uid, client)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import logshapes as L
from tests.unit.test_origins import pickup_message, sasl_message
from watcher.cli import main
from watcher.reports.codec import from_json, to_json


def _flood_log(tmp_path: Path) -> Path:
    lines: list[str] = []
    for i in range(80):  # bob's stolen password: 5 messages a second
        lines += sasl_message(10 + i / 5, i, "bob")
    for i in range(10):  # alice, and a cron job, as usual
        lines += sasl_message(10 + i * 3, 200 + i, "alice")
        lines += pickup_message(11 + i * 3, i, 1000)
    lines += L.remote_bounce(30, 1)  # one bounce relayed out: backscatter's, not by origin
    lines.sort(key=lambda ln: ln[:15])  # one timeline (the shapes' stamps sort as text)
    path = tmp_path / "mail.log"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_replay_shows_per_origin_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = _flood_log(tmp_path)
    assert main(["replay", "--no-progress", "--year", "2011", "--json", str(log)]) == 1
    v = json.loads(capsys.readouterr().out)
    assert v["trip"]["rule"] == "sasl-flood"
    rules = {r["name"]: r for r in v["rules"]}
    top = rules["sasl-flood"]["by_origin"]
    assert sum(n for k, n in top if k.startswith("sasl bob ")) == 80
    assert sum(n for k, n in top if k.startswith("sasl alice ")) == 10
    assert rules["local-flood"]["by_origin"] == [["uid 1000 <u1000>", 10]]
    assert rules["backscatter"]["matches"] == 1
    assert rules["backscatter"]["by_origin"] == []  # not a rule by origin
    assert main(["replay", "--no-progress", "--year", "2011", str(log)]) == 1
    text = capsys.readouterr().out
    assert "origin (SASL user, uid or client):" in text
    assert "sasl bob from pc" in text


def test_report_names_the_offender_and_keeps_it_in_report_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "incident"
    log = _flood_log(tmp_path)
    assert (
        main(["report", "--out", str(out), "--year", "2011", "--rule", "sasl-flood", str(log)]) == 1
    )
    capsys.readouterr()
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "## Per origin (SASL user, uid or client)" in md
    assert md.index("## Per origin") < md.index("## Per destination domain")
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert sum(n for k, n in data["by_origin"] if k.startswith("sasl bob ")) == 80
    assert all(m["origin"].startswith("sasl ") for m in data["matches"])
    again = from_json(data)
    assert to_json(again)["by_origin"] == data["by_origin"]
    assert again.matches[0].origin == data["matches"][0]["origin"]


def test_the_flood_rules_do_not_warn_on_the_generators_day_without_a_storm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The mixed day (submission, sendmail, inbound, forwarding) has SASL users, uids and
    clients at their honest peaks (see rules/*-flood.toml): no flood rule so much as warns."""
    import io
    import sys

    root = Path(__file__).resolve().parents[2]
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from benchmarks import genlog

    out = io.StringIO()
    genlog.generate_mixed(out, lines=200_000, seed=1, fmt="classic", start=None, storm=False)
    log = tmp_path / "mixed.log"
    log.write_text(out.getvalue(), encoding="utf-8")
    assert main(["replay", "--no-progress", "--json", str(log)]) == 0
    rules = {r["name"]: r for r in json.loads(capsys.readouterr().out)["rules"]}
    for name in ("sasl-flood", "local-flood", "client-flood"):
        assert rules[name]["matches"] > 100, name  # they did count: the day has such mail
        assert rules[name]["warned"] is None, name
