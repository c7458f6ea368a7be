"""The command line, in-process: exit status, outputs, errors."""

from __future__ import annotations

import gzip
import io
import json
import sys
from pathlib import Path

import pytest

from tests import logshapes as L
from watcher.cli import main

DEMO = Path(__file__).resolve().parents[2] / "watcher" / "data" / "demo-incident.log"


def _storm_log(path: Path, n: int = 40) -> Path:
    lines: list[str] = []
    for i in range(20):
        lines += L.ordinary_message(i, i)
    for i in range(n):
        lines += L.storm_message(30 + i / 5, i, f"list-bounces@lists{i % 2}.example.org")
    path.write_text("\n".join(lines) + "\n")
    return path


def _calm_log(path: Path) -> Path:
    lines: list[str] = []
    for i in range(50):
        lines += L.ordinary_message(i, i)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_replay_of_a_storm_exits_1_and_says_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = _storm_log(tmp_path / "mail.log")
    assert main(["replay", "--year", "2011", "--timezone", "UTC", str(log)]) == 1
    out = capsys.readouterr().out
    assert "VERDICT: TRIPPED by rule 'forwarding-loop' at 2011-10-16 17:52:30" in out
    assert "lists0.example.org" in out
    assert "PLAN (dry run: nothing was done):" in out
    assert (
        "postconf -c /etc/postfix -e -- soft_bounce=yes 'sender_dependent_default_transport_maps=inline:{ {<>=retry:4.7.1 held by stormwatch} }'"
        in out
    )


def test_replay_of_calm_traffic_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = _calm_log(tmp_path / "mail.log")
    assert main(["replay", "--year", "2011", str(log)]) == 0
    assert "VERDICT: no rule tripped." in capsys.readouterr().out


def test_replay_json_reads_gzip_and_files_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calm = _calm_log(tmp_path / "mail.log.1")
    gz = tmp_path / "mail.log.2.gz"
    gz.write_bytes(gzip.compress(calm.read_bytes()))
    storm = _storm_log(tmp_path / "mail.log")
    code = main(
        ["replay", "--json", "--year", "2011", "--timezone", "UTC", str(gz), str(calm), str(storm)]
    )
    assert code == 1
    v = json.loads(capsys.readouterr().out)
    assert [i["name"] for i in v["inputs"]] == [str(gz), str(calm), str(storm)]
    assert v["inputs"][0]["lines"] == v["inputs"][1]["lines"] == 250
    assert v["lines"] == 250 * 2 + 100 + 280
    assert v["trip"]["source"] == str(storm)
    assert v["trip"]["rule"] == "forwarding-loop"
    assert v["trip"]["time"] == "2011-10-16T17:52:30.400000+00:00" or v["trip"]["time"].startswith(
        "2011-10-16T17:52:30"
    )
    backscatter = next(r for r in v["rules"] if r["name"] == "backscatter")
    assert backscatter["matches"] == 40
    assert dict(backscatter["by_domain"]) == {"lists0.example.org": 20, "lists1.example.org": 20}
    assert {p["kind"] for p in v["plan"]} >= {
        "notify",
        "stop-fetchmail",
        "contain-postfix",
        "hold-bounces",
    }


def test_replay_reads_stdin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _storm_log(tmp_path / "mail.log").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))
    assert main(["replay", "--year", "2011", "-"]) == 1


def test_invalid_utf8_is_replaced_not_fatal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = _storm_log(tmp_path / "mail.log")
    log.write_bytes(b"Oct 16 17:00:00 mx postfix/smtpd[1]: \xff\xfe bad bytes\n" + log.read_bytes())
    assert main(["replay", "--year", "2011", str(log)]) == 1


def test_missing_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(tmp_path / "nope.log")]) == 2
    assert "nope.log: no such file" in capsys.readouterr().err


def test_bad_rules_directory_refuses_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.toml").write_text(
        '[[rule]]\nname = "b"\ntrip_at = 0\n[rule.match]\n[rule.window]\nseconds = 1\n'
    )
    log = _calm_log(tmp_path / "mail.log")
    assert main(["replay", "--rules", str(tmp_path), str(log)]) == 2
    err = capsys.readouterr().err
    assert (
        f"{tmp_path / 'bad.toml'}:3: rule 'b': trip_at: Input should be greater than or equal to 1"
        in err
    )


def test_unknown_config_key_names_file_line_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "stormwatch.toml"
    cfg.write_text(
        'timezone = "UTC"\n\n[postfix]\nconfig_directory = "/etc/postfix"\nconfg_dir = "x"\n'
    )
    assert main(["check-config", "--config", str(cfg)]) == 2
    assert f"{cfg}:5: postfix.confg_dir: unknown key" in capsys.readouterr().err


def test_check_config_prints_effective_settings_and_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "stormwatch.toml"
    cfg.write_text("")
    assert main(["check-config", "--config", str(cfg), "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f'state_dir = "{tmp_path}"' in out
    assert "backscatter: delivery, warn_at=3, trip_at=10 in 60 s" in out
    assert out.endswith("OK\n")


def test_bad_timezone_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = _calm_log(tmp_path / "mail.log")
    assert main(["replay", "--timezone", "Mars/Olympus", str(log)]) == 2
    assert "unknown time zone 'Mars/Olympus'" in capsys.readouterr().err


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["replay"])
    assert exc.value.code == 2


def test_progress_bar_on_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import watcher.runtime.replay

    log = _calm_log(tmp_path / "mail.log")
    monkeypatch.setattr(watcher.runtime.replay, "PROGRESS_MIN_BYTES", 0)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(["replay", "--year", "2011", str(log)]) == 0
    assert "mail.log" in capsys.readouterr().err  # tqdm's bar, labelled with the file
    assert main(["replay", "--no-progress", "--year", "2011", str(log)]) == 0
    assert capsys.readouterr().err == ""


def test_check_config_refuses_a_bad_command_placeholder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "stormwatch.toml"
    cfg.write_text('[command]\nargv = ["/bin/echo", "{rule.__class__}"]\n')
    assert main(["check-config", "--config", str(cfg)]) == 2
    assert "command.argv[1]" in capsys.readouterr().err


def test_check_config_warns_when_pages_would_go_through_the_frozen_postfix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "stormwatch.toml"
    cfg.write_text('[notify]\nurls = ["mailto://root@localhost"]\n')
    assert main(["check-config", "--config", str(cfg)]) == 0
    assert "WARNING: notify: every notification target is e-mail" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["check-config"], ["run", "--dry-run"]])
def test_a_non_loopback_metrics_address_is_refused_at_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """check-config and run share one validation: run refuses before it opens anything."""
    cfg = tmp_path / "stormwatch.toml"
    cfg.write_text(
        f'state_dir = "{tmp_path / "state"}"\n[metrics]\nenabled = true\naddress = "0.0.0.0"\n'
    )
    args = [*command, "--config", str(cfg), "--source", f"file:{tmp_path / 'mail.log'}"]
    if command == ["check-config"]:
        args = args[:-2]
    assert main(args) == 2
    assert "[metrics] address '0.0.0.0' is not loopback" in capsys.readouterr().err
    assert not (tmp_path / "state").exists()


def test_run_refuses_a_bad_command_placeholder_at_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "stormwatch.toml"
    cfg.write_text(
        f'state_dir = "{tmp_path / "state"}"\n[command]\nargv = ["/bin/echo", "{{0.__class__}}"]\n'
    )
    assert main(["run", "--dry-run", "--config", str(cfg), "--source", "journal"]) == 2
    assert "command.argv[1]" in capsys.readouterr().err


def test_incidents_accepts_an_id_as_its_usage_says(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--out", str(tmp_path / "incidents" / "x"), "--year", "2011",
                 "--timezone", "Asia/Tokyo", str(DEMO)]) == 1  # fmt: skip
    capsys.readouterr()
    for words in (["x"], ["show", "x"]):
        assert main(["incidents", *words, "--state-dir", str(tmp_path)]) == 0
        assert capsys.readouterr().out.startswith("# Incident ")
    assert main(["incidents", "list", "--state-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("x  forwarding-loop")
    assert main(["incidents", "show", "--state-dir", str(tmp_path)]) == 2
