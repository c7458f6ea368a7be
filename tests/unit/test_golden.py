"""Golden replays: a log and the exact verdict it must give."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from watcher import __version__
from watcher.cli import main
from watcher.core.origin import NO_ORIGINS, OriginWants
from watcher.sources.replay import ScannedRange, scan_parallel

GOLDEN = Path(__file__).resolve().parent.parent / "data" / "golden"


def test_demo_incident_verdict_is_exactly_the_golden_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--json"]) == 1
    got = json.loads(capsys.readouterr().out)
    want = json.loads((GOLDEN / "demo-incident.json").read_text())
    assert got["stormwatch"] == __version__
    got.pop("stormwatch")
    want.pop("stormwatch")
    assert got == want


def test_demo_incident_headline_figures(capsys: pytest.CaptureFixture[str]) -> None:
    """The seed's own figures: 1000 bounces relayed out, 787 + 155 to the two big list hosts."""
    main(["demo", "--json"])
    v = json.loads(capsys.readouterr().out)
    assert v["trip"]["rule"] == "forwarding-loop"
    assert v["trip"]["time"] == "2011-10-16T17:52:52+09:00"
    back = next(r for r in v["rules"] if r["name"] == "backscatter")
    assert back["matches"] == 1000
    assert back["by_domain"][:2] == [["groups.example.com", 787], ["lists.example.org", 155]]
    # the switch trips on the second loop, before the first bounce is relayed out
    assert back["first"]["line"] > v["trip"]["line"]
    assert back["after_trip"] == 1000


def test_demo_text_report_names_trip_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 1
    out = capsys.readouterr().out
    assert "VERDICT: TRIPPED by rule 'forwarding-loop' at 2011-10-16 17:52:52" in out
    assert "      groups.example.com       787" in out
    assert (
        "run: postconf -c /etc/postfix -e -- soft_bounce=yes 'sender_dependent_default_transport_maps=inline:{ {<>=retry:4.7.1 held by stormwatch} }'"
        in out
    )


def test_parallel_scan_of_a_large_file_gives_the_same_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker processes scan byte ranges; the join runs in order: same answer, to the byte."""
    import watcher.runtime.replay
    import watcher.sources.replay

    demo = Path(__file__).resolve().parents[2] / "watcher" / "data" / "demo-incident.log"
    log = tmp_path / "demo.log"
    log.write_bytes(demo.read_bytes())
    args = [
        "replay",
        "--json",
        "--no-progress",
        "--year",
        "2011",
        "--timezone",
        "Asia/Tokyo",
        str(log),
    ]
    assert main(args) == 1
    sequential = json.loads(capsys.readouterr().out)
    monkeypatch.setattr(watcher.runtime.replay, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(watcher.sources.replay, "RANGE_BYTES", 64 << 10)  # ~23 ranges
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    ranges: list[int] = []

    def counting(
        path: str,
        spans: list[tuple[int, int]],
        workers: int,
        collapse: bool,
        origins: OriginWants = NO_ORIGINS,
    ) -> Iterator[ScannedRange]:
        for scanned in scan_parallel(path, spans, workers, collapse, origins):
            ranges.append(scanned[0])
            yield scanned

    monkeypatch.setattr("watcher.runtime.replay.scan_parallel", counting)
    assert main(args) == 1
    parallel = json.loads(capsys.readouterr().out)
    assert len(ranges) > 20
    assert ranges == sorted(ranges)
    assert parallel == sequential
