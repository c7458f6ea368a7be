"""Log time that goes backwards: the repeated hour of a DST fall-back, and one line
dated far ahead. Slow traffic must not trip; a step back beyond the window
re-bases it, and is counted."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests import logshapes as L
from watcher.cli import main
from watcher.core.parse import Parser
from watcher.core.pipeline import Pipeline
from watcher.core.times import iso
from watcher.runtime.rulefiles import load_rules

BERLIN = ZoneInfo("Europe/Berlin")
# Europe/Berlin falls back on 2025-10-26: 03:00 CEST -> 02:00 CET; 02:00-02:59 twice
FALL_BACK_UTC = datetime(2025, 10, 26, 1, 0, tzinfo=UTC)
W = 60_000_000


def _every_five_minutes(start: datetime, hours: int) -> list[datetime]:
    return [start + timedelta(minutes=5 * i) for i in range(hours * 12)]


def _bounces(times: list[datetime], tz: ZoneInfo = BERLIN) -> list[str]:
    lines: list[str] = []
    for n, t in enumerate(times):
        lines += L.remote_bounce(L.classic(t.astimezone(tz)), n)
    return lines


def _replay(tmp_path: Path, lines: list[str], *extra: str) -> int:
    log = tmp_path / "mail.log"
    log.write_text("\n".join(lines) + "\n")
    return main(["replay", "--year", "2025", "--timezone", "Europe/Berlin", *extra, str(log)])


# -- the replay, end to end ---------------------------------------------------------


def test_slow_bounces_across_a_dst_fall_back_do_not_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    times = _every_five_minutes(FALL_BACK_UTC - timedelta(hours=2), 4)
    lines = _bounces(times)
    assert sum(" 02:30:00 " in x for x in lines) == 2 * 7  # the repeated hour, twice
    assert _replay(tmp_path, lines) == 0
    assert "VERDICT: no rule tripped." in capsys.readouterr().out


def test_slow_bounces_after_one_line_dated_six_weeks_ahead_do_not_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)
    before = _bounces(_every_five_minutes(start, 1))
    outlier = L.remote_bounce(L.classic((start + timedelta(weeks=6)).astimezone(BERLIN)), 999)
    after = _bounces(_every_five_minutes(start + timedelta(hours=1), 3))
    assert _replay(tmp_path, [*before, *outlier, *after], "--json") == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["tripped"] is False
    steps = verdict["time_steps"]
    assert steps["back"] == 1  # the first line after the outlier; once
    assert steps["largest_seconds"] == pytest.approx(6 * 7 * 86400 - 3600, abs=1)
    assert steps["first"]["line"] == len(before) + len(outlier) + 3  # its bounce notice


def test_a_storm_in_the_repeated_hour_still_trips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    second_pass = FALL_BACK_UTC + timedelta(minutes=30)  # 02:30 CET
    lines = _bounces(_every_five_minutes(FALL_BACK_UTC - timedelta(hours=1), 1))
    lines += _bounces([second_pass + timedelta(seconds=i) for i in range(12)])
    assert _replay(tmp_path, lines) == 1
    assert "VERDICT: TRIPPED by rule" in capsys.readouterr().out


# -- the parser: which pass of the repeated hour ---------------------------------------


def _parser() -> Parser:
    return Parser(reference=datetime(2025, 12, 31, tzinfo=UTC), tz=BERLIN)


def _time(p: Parser, ts: str) -> int:
    t = p.timestamp(ts)
    assert t is not None
    return t


def test_the_repeated_hour_is_read_as_the_pass_the_log_is_in() -> None:
    p = _parser()
    first = _time(p, "Oct 26 02:30:00")
    _time(p, "Oct 26 02:59:59")
    second = _time(p, "Oct 26 02:00:00")  # after 02:59 CEST: 02:00 CET
    again = _time(p, "Oct 26 02:30:00")
    assert iso(first, BERLIN) == "2025-10-26T02:30:00+02:00"
    assert iso(second, BERLIN) == "2025-10-26T02:00:00+01:00"
    assert iso(again, BERLIN) == "2025-10-26T02:30:00+01:00"  # printed with the winter offset
    assert again - first == 3600 * 1_000_000


def test_rfc3339_without_an_offset_in_the_repeated_hour() -> None:
    p = _parser()
    _time(p, "2025-10-26T02:59:00")
    assert iso(_time(p, "2025-10-26T02:01:00.5"), BERLIN) == "2025-10-26T02:01:00.500000+01:00"


def test_a_spring_forward_gap_is_read_as_before() -> None:
    p = _parser()  # 2025-03-30 02:00 CET -> 03:00 CEST: 02:30 does not exist
    assert iso(_time(p, "Mar 30 02:30:00"), BERLIN) == "2025-03-30T03:30:00+02:00"


# -- the pipeline -------------------------------------------------------------------


def test_the_pipeline_counts_a_step_back_beyond_the_shortest_window() -> None:
    seen: list[tuple[int, int]] = []
    pipeline = Pipeline.build(
        [r.rule for r in load_rules()],
        Parser(reference=L.REFERENCE),
        on_time_step=lambda step, where: seen.append((step, where.lineno)),
    )
    lines = [*L.remote_bounce(0, 1), *L.remote_bounce(86400, 2), *L.remote_bounce(30, 3)]
    lines += L.remote_bounce(29, 4)  # a second back: ordinary, not a step
    pipeline.run(lines, "mail.log")
    assert pipeline.time_steps.back == 1
    assert pipeline.time_steps.largest == (86400 - 30) * 1_000_000
    assert seen == [((86400 - 30) * 1_000_000, 17)]  # the bounce notice of message 3
    start = int(L.REFERENCE.timestamp()) * 1_000_000
    assert pipeline.last_time is not None
    assert pipeline.last_time - start < 60 * 1_000_000  # re-based: not the outlier's time


def test_a_block_ending_in_the_second_pass_ends_the_span_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = FALL_BACK_UTC - timedelta(minutes=90)  # 01:30 CEST .. 02:05 CET, one block
    lines = _bounces([start + timedelta(minutes=5 * i) for i in range(20)])
    end = L.classic((start + timedelta(minutes=100)).astimezone(BERLIN))  # 02:10 CET
    qid = "6000000001"  # ordinary mail: seen only as the block's last qmgr line
    lines += [L.qmgr_from(end, qid, "user@example.com"), L.delivery(end, qid, "u@example.net")]
    lines.append(L.removed(end, qid))
    assert _replay(tmp_path, lines, "--json") == 0
    span = json.loads(capsys.readouterr().out)["span"]
    assert span["last"] == "2025-10-26T02:10:00+01:00"  # not the summer 02:10, an hour early


def test_the_runtime_logs_a_step(caplog: pytest.LogCaptureFixture) -> None:
    from watcher.core.pipeline import Where
    from watcher.runtime.service import warn_time_step

    warn_time_step(3_628_800_000_000, Where("mail.log", 94, "...", 0))
    assert "log time went back 3628800 s (mail.log:94)" in caplog.text
