"""The incident report: golden files from the bundled demo, escaping, the chart, the folder.

The golden files under ``tests/data/golden/incident/`` are what the demo log gives;
after a deliberate change, regenerate them with::

    python -c "from tests.unit.test_incident import regenerate; regenerate()"

and read the diff before committing it.
"""

from __future__ import annotations

import json
import stat
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests import logshapes as L
from watcher.core.correlate import Correlator
from watcher.core.decide import Decider
from watcher.core.detect import Detector
from watcher.core.incident import Incident
from watcher.core.latch import Latch
from watcher.core.parse import Parser
from watcher.core.pipeline import Evidence, Pipeline, Where
from watcher.core.settings import Settings
from watcher.core.times import from_iso
from watcher.reports import build, codec, markdown, model, store, svg
from watcher.runtime.rulefiles import load_rules

GOLDEN = Path(__file__).resolve().parent.parent / "data" / "golden" / "incident"
TOKYO = ZoneInfo("Asia/Tokyo")
SVG = "{http://www.w3.org/2000/svg}"
DEMO_RULES = ("forwarding-loop", "backscatter")


def replay_demo() -> Pipeline:
    """The demo log through the default rules, as ``stormwatch demo`` replays it."""
    rules = [r.rule for r in load_rules()]
    parser = Parser(reference=datetime(2011, 12, 31, tzinfo=UTC), tz=TOKYO)
    pipeline = Pipeline.build(rules, parser, content_filters=Settings().content_filters)
    text = resources.files("watcher.data").joinpath("demo-incident.log").read_text("utf-8")
    pipeline.run_text(text, "demo-incident.log")
    return pipeline


def regenerate() -> None:
    """Rewrite the golden files from the current code (see the module docstring)."""
    pipeline = replay_demo()
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for rule in DEMO_RULES:
        data = build.from_pipeline(pipeline, rule, TOKYO)
        text = json.dumps(codec.to_json(data), indent=1, ensure_ascii=False, sort_keys=True)
        (GOLDEN / f"demo-{rule}.json").write_text(text + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def demo() -> Pipeline:
    return replay_demo()


@pytest.fixture(scope="module")
def loop(demo: Pipeline) -> model.IncidentReport:
    return build.from_pipeline(demo, "forwarding-loop", TOKYO)


@pytest.fixture(scope="module")
def back(demo: Pipeline) -> model.IncidentReport:
    return build.from_pipeline(demo, "backscatter", TOKYO)


def _latch_of(**kwargs: object) -> Latch:
    return Latch.from_json(_latch(**kwargs))  # type: ignore[arg-type]


def _latch(
    *, freeze_ok: bool = True, held: tuple[str, ...] = ("2A0000000B", "2A0000000C")
) -> dict[str, object]:
    """A latch as the kill switch leaves it after the actions ran (host clock: UTC)."""
    return {
        "schema": 1,
        "tripped": True,
        "incident": {
            "id": "20111016T085253Z-backscatter",
            "rule": "backscatter",
            "host": "mailhub",
        },
        "actions": [
            {
                "kind": "freeze-postfix",
                "ok": freeze_ok,
                "summary": "outflow stopped: soft_bounce=yes, defer_transports=smtp (SIGHUP)"
                if freeze_ok
                else "Postfix NOT frozen: postconf failed",
                "details": {"applied": {"soft_bounce": "yes"}} if freeze_ok else {},
                "at": "2011-10-16T08:53:05.250+00:00",
            },
            {
                "kind": "hold-bounces",
                "ok": True,
                "summary": f"{len(held)} storm message(s) put on hold",
                "details": {"held": list(held)},
                "at": "2011-10-16T08:53:05.900+00:00",
            },
            {
                "kind": "notify",
                "ok": False,
                "summary": "page failed: 1 of 1 target(s)",
                "details": {},
                "at": "2011-10-16T08:53:06.000+00:00",
            },
        ],
        "held": list(held),
    }


# ---------------------------------------------------------------- golden files


@pytest.mark.parametrize("rule", DEMO_RULES)
def test_demo_report_json_is_exactly_the_golden_one(demo: Pipeline, rule: str) -> None:
    data = build.from_pipeline(demo, rule, TOKYO)
    got = json.loads(json.dumps(codec.to_json(data)))
    want = json.loads((GOLDEN / f"demo-{rule}.json").read_text(encoding="utf-8"))
    assert got == want


@pytest.mark.parametrize("rule", DEMO_RULES)
def test_demo_report_md_has_the_golden_table_rows(demo: Pipeline, rule: str) -> None:
    md = markdown.render_markdown(build.from_pipeline(demo, rule, TOKYO)).splitlines()
    want = (GOLDEN / f"demo-{rule}.rows.md").read_text(encoding="utf-8").splitlines()
    missing = [row for row in want if row and row not in md]
    assert not missing, "rows missing from report.md:\n" + "\n".join(missing)


def test_demo_headline_figures_are_the_seed_incidents(
    loop: model.IncidentReport, back: model.IncidentReport, demo: Pipeline
) -> None:
    """1000 bounces relayed out, 787 + 155 to the two big list hosts; the switch trips on
    the second loop, before any bounce has left."""
    assert build.tripping_rule(demo) == "forwarding-loop"
    assert back.matches_total == len(back.matches) == 1000
    assert back.by_domain[:2] == (("groups.example.com", 787), ("lists.example.org", 155))
    assert loop.incident.trip is not None
    assert (loop.incident.trip.time, loop.incident.trip.line, loop.incident.trip.count) == (
        "2011-10-16T17:52:52+09:00",
        73,
        2,
    )
    assert loop.incident.id == "20111016T085252Z-forwarding-loop"
    assert loop.incident.host == "mailhub"
    assert loop.mode == "replay"
    assert loop.rule_actions == ("contain-postfix", "hold-bounces", "stop-fetchmail", "notify")
    others = {o.name: o for o in loop.other_rules}
    assert others["backscatter"].matches == 1000
    assert others["backscatter"].before_stop == 0  # first relayed bounce: line 110 > 82
    assert len(model.escaped_before_stop(loop)) == 2


def test_matches_carry_what_the_join_knew(
    loop: model.IncidentReport, back: model.IncidentReport
) -> None:
    m = loop.matches[0]
    assert (m.where.lineno, m.qid, m.domain) == (
        64,
        m.where.text.split()[5].rstrip(":"),
        "localhost",
    )
    assert m.sender.endswith("@lists.example.org") or "@" in m.sender
    assert {b.sender for b in back.matches} == {""}  # backscatter: the null sender
    by_domain: dict[str, int] = {}
    for b in back.matches:
        by_domain[b.domain] = by_domain.get(b.domain, 0) + 1
    assert by_domain["groups.example.com"] == 787
    # the per-match senders add up to the rule's own table
    senders: dict[str, int] = {}
    for x in loop.matches:
        senders[x.sender] = senders.get(x.sender, 0) + 1
    assert sorted(senders.items(), key=lambda kv: (-kv[1], kv[0])) == list(loop.by_sender)


def test_unknown_rule_is_a_value_error(demo: Pipeline) -> None:
    with pytest.raises(ValueError, match="no rule 'nope'"):
        build.from_pipeline(demo, "nope", TOKYO)


def test_max_matches_caps_the_lines_not_the_counts(demo: Pipeline) -> None:
    data = build.from_pipeline(demo, "backscatter", TOKYO, max_matches=10)
    assert len(data.matches) == 10
    assert data.matches_total == 1000
    assert sum(n for _, n in data.by_domain) == 1000
    assert "Only the first 10 of 1,000 matching lines were recorded" in markdown.render_markdown(
        data
    )


def _weeks_then_storm() -> list[str]:
    """Legitimate bounces relayed out now and then for three weeks, then a storm."""
    lines: list[str] = []
    day = 86_400.0
    for i in range(30):
        t = -21 * day + i * 0.7 * day
        child = f"5{i:09X}"
        lines += [
            L.qmgr_from(t, child, ""),
            L.delivery(t, child, f"someone{i}@customer.example.net"),
            L.removed(t, child),
        ]
    for i in range(15):
        lines += L.storm_message(100 + i / 2, i, f"list{i % 3}-bounces@lists{i % 3}.example.org")
    return lines


def test_since_keeps_weeks_of_legitimate_bounces_out_of_a_live_incident() -> None:
    rules = [r.rule for r in load_rules()]
    p = Pipeline.build(rules, Parser(reference=L.REFERENCE, tz=UTC))
    p.run(_weeks_then_storm(), "mail.log")
    s = p.summaries["backscatter"]
    assert s.matches == 45  # the running totals hold the three weeks too
    assert s.tripped is not None
    since = s.tripped.time - 600 * 1_000_000
    whole = build.from_pipeline(p, "backscatter", UTC)
    data = build.from_pipeline(p, "backscatter", UTC, since_us=since)
    assert whole.matches_total == 45
    assert "customer.example.net" in dict(whole.by_domain)
    assert data.matches_total == len(data.matches) == 15
    assert dict(data.by_domain) == {
        "lists0.example.org": 5,
        "lists1.example.org": 5,
        "lists2.example.org": 5,
    }
    assert data.by_sender == (("", 15),)
    assert data.incident.first_match is not None
    assert data.incident.first_match.time == "2011-10-16T17:53:40+00:00"  # 100.2 s: whole seconds
    assert data.incident.trip is not None
    assert data.incident.trip.count == 10
    loops = {o.name: o for o in data.other_rules}["forwarding-loop"]
    assert loops.matches == 15
    chart = svg.chart_buckets(data)
    assert len(chart.counts) < 10  # around the storm, not three weeks
    assert chart.before == chart.after == 0


def test_evidence_keeps_the_last_lines_with_what_the_join_knew() -> None:
    """A long-running watcher keeps the newest counted lines (the storm), not the oldest."""
    rules = [r.rule for r in load_rules()]
    p = Pipeline(
        Parser(reference=L.REFERENCE), Correlator(), Detector(rules), Decider(rules), evidence_cap=4
    )
    p.run(_weeks_then_storm(), "mail.log")
    s = p.summaries["forwarding-loop"]
    assert s.evidence_dropped == 11
    data = build.from_pipeline(p, "forwarding-loop", UTC)
    senders = [m.sender for m in data.matches]
    assert senders == [f"list{i % 3}-bounces@lists{i % 3}.example.org" for i in range(11, 15)]
    assert all(m.qid and m.qid in m.where.text for m in data.matches)


def test_a_trip_by_hand_has_a_report_from_the_latch_alone() -> None:
    latch = _latch()
    latch["incident"] = {
        "id": "20240102T030405Z-manual",
        "rule": "manual",
        "description": "bounces to *everyone*",
        "count": 0,
        "threshold": 0,
        "window_seconds": 0.0,
        "trip_time": "2024-01-02T03:04:05+00:00",
        "trip_line": "manual trip: bounces to *everyone*",
        "host": "mx1",
    }
    latch["trips"] = [{"source": "manual", "line": 0}]
    data = build.from_latch(Latch.from_json(latch), UTC, config_directory="/etc/postfix")
    assert (data.incident.rule, data.mode, data.incident.host) == ("manual", "live", "mx1")
    assert data.held == ("2A0000000B", "2A0000000C")
    md = markdown.render_markdown(data)
    assert r"- Tripped by hand at 2024-01-02 03:04:05: bounces to \*everyone\*" in md
    assert "| 2024-01-02 03:04:05 | **tripped by hand** (manual:0) |" in md
    assert "postsuper -c /etc/postfix -H 2A0000000B" in md
    root = _svg(data)
    bars = _by_class(root, "rect", "bar")
    assert len(bars) == 5  # quiet buckets around the moment of the trip
    assert {b.get("data-count") for b in bars} == {"0"}
    assert len(_by_class(root, "line", "trip")) == 1
    assert not _by_class(root, "line", "threshold")
    assert "no matching lines" in "".join(root.itertext())
    assert codec.from_json(codec.to_json(data)) == data


# ------------------------------------------------------------------ JSON round trip


@pytest.mark.parametrize("rule", DEMO_RULES)
def test_json_round_trip_through_text(demo: Pipeline, rule: str) -> None:
    data = build.from_pipeline(demo, rule, TOKYO, latch=_latch_of())
    text = json.dumps(codec.to_json(data), ensure_ascii=False)
    assert codec.from_json(json.loads(text)) == data


def test_json_round_trip_keeps_microseconds_exactly() -> None:
    t = 1_318_755_172_123_457
    data = model.IncidentReport(
        incident=Incident(id="x", rule="r", window_seconds=60.0, threshold=10, host="h"),
        matches=(Evidence(Where("s", 1, "line", t), "ABCDEF", "d", ""),),
        matches_total=1,
        tz="America/New_York",
    )
    assert codec.to_json(data)["matches"][0]["time"] == "2011-10-16T04:52:52.123457-04:00"
    assert codec.from_json(codec.to_json(data)) == data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema": 2}, "schema 2: expected 1"),
        ({"mode": "maybe"}, "mode 'maybe'"),
        ({"matches": [{"time": "2011-10-16T17:52:52+09:00"}]}, "missing key 'source'"),
        (
            {
                "matches": [
                    {
                        "time": "2011-10-16T17:52:52",
                        "source": "",
                        "line": 1,
                        "text": "",
                        "domain": "",
                        "sender": "",
                        "qid": "",
                    }
                ]
            },
            "no UTC offset",
        ),
        ({"held": 5}, "wrong shape"),
    ],
)
def test_json_to_data_names_what_is_wrong(
    loop: model.IncidentReport, change: dict[str, object], message: str
) -> None:
    d = {**codec.to_json(loop), **change}
    with pytest.raises(ValueError, match=message):
        codec.from_json(d)


def test_json_to_data_reports_a_missing_key(loop: model.IncidentReport) -> None:
    d = codec.to_json(loop)
    del d["threshold"]
    with pytest.raises(ValueError, match="missing key 'threshold'"):
        codec.from_json(d)


# ------------------------------------------------------------------- live: the latch


def test_latch_makes_it_live_with_outcomes_held_and_stop(demo: Pipeline) -> None:
    data = build.from_pipeline(
        demo, "backscatter", TOKYO, latch=_latch_of(), config_directory="/etc/postfix-out"
    )
    assert data.mode == "live"
    assert data.incident.id == "20111016T085253Z-backscatter"
    assert data.held == ("2A0000000B", "2A0000000C")
    assert data.outflow_stopped_at == "2011-10-16T08:53:05.250+00:00"
    assert [a.kind for a in data.actions] == ["freeze-postfix", "hold-bounces", "notify"]
    # the stop is 17:53:05.25 JST: what the backscatter rule logged up to then escaped
    escaped = model.escaped_before_stop(data)
    cut = from_iso("2011-10-16T17:53:05.250+09:00")
    assert escaped == tuple(m for m in data.matches if m.where.time <= cut)
    assert 0 < len(escaped) < 1000
    j = codec.to_json(data)
    assert j["escaped"]["basis"] == "freeze"
    assert j["escaped"]["count"] == len(escaped)
    md = markdown.render_markdown(data)
    assert "| 2011-10-16 17:53:05.250 (host clock) | **outflow stopped** |" in md
    assert "| notify | **FAILED** | 2011-10-16 17:53:06.000 |" in md
    assert f"{len(escaped):,} deliveries logged before the outflow stopped at" in md


def test_a_failed_freeze_means_everything_escaped(demo: Pipeline) -> None:
    data = build.from_pipeline(demo, "backscatter", TOKYO, latch=_latch_of(freeze_ok=False))
    assert data.outflow_stopped_at is None
    assert model.stop_point(data) == ("not-stopped", None)
    assert len(model.escaped_before_stop(data)) == 1000
    assert "The outflow was **not** stopped: 1,000 deliveries in all." in markdown.render_markdown(
        data
    )


def test_replay_stops_at_the_trip_line_in_log_order(back: model.IncidentReport) -> None:
    assert back.incident.trip is not None
    escaped = model.escaped_before_stop(back)
    assert escaped[-1].where.lineno == back.incident.trip.line
    assert len(escaped) == back.incident.trip.count  # the rule tripped on its 10th relayed bounce
    same_second = [m for m in back.matches if m.where.time == from_iso(back.incident.trip.time)]
    assert any(
        m.where.lineno > back.incident.trip.line for m in same_second
    )  # later lines that second: kept in


# ------------------------------------------------------------------------- Markdown


def test_markdown_has_timeline_tables_and_exact_commands(demo: Pipeline) -> None:
    data = build.from_pipeline(
        demo, "backscatter", TOKYO, latch=_latch_of(), config_directory="/etc/postfix-out"
    )
    md = markdown.render_markdown(data)
    for heading in ("## Timeline", "## Per destination domain", "## Per sender",
                    "## What escaped before the stop", "## Held mail: inspect or release"):  # fmt: skip
        assert heading in md
    assert "| 2011-10-16 17:52:52 | first matching line (demo-incident.log:110) |" in md
    assert "| groups.example.com | 787 |" in md
    assert "2A0000000B 2A0000000C" in md
    for command in (
        "postqueue -c /etc/postfix-out -j",
        "postcat -c /etc/postfix-out -q 2A0000000B",
        "postsuper -c /etc/postfix-out -H 2A0000000B",
        "stormwatch rearm --release-held",
    ):
        assert f"\n{command}\n" in md, command


def test_commands_quote_the_directory_and_leave_out_what_is_not_a_queue_id(
    loop: model.IncidentReport,
) -> None:
    data = replace(loop, config_directory="/etc/post fix", held=("; rm -rf /", "4F2A9B1C3D"))
    md = markdown.render_markdown(data)
    assert "postsuper -c '/etc/post fix' -H 4F2A9B1C3D" in md
    assert "rm -rf" not in md
    assert "(left out, not a valid queue ID: 1)" in md


HOSTILE = (
    "x|y*z*_u_`v`[a](http://evil.example)<script>alert(1)</script>&amp;~~s~~!\x1b[31m@evil.example"
)


def _hostile_pipeline() -> Pipeline:
    lines: list[str] = []
    for i in range(12):
        lines += L.storm_message(i / 4, i, HOSTILE)
    p = Pipeline.build([r.rule for r in load_rules()], Parser(reference=L.REFERENCE, tz=UTC))
    p.run(lines, "mail.log")
    return p


def test_hostile_addresses_are_escaped_in_markdown() -> None:
    data = build.from_pipeline(_hostile_pipeline(), "forwarding-loop", UTC)
    md = markdown.render_markdown(data)
    row = next(line for line in md.splitlines() if "evil" in line and line.startswith("| x"))
    assert row == (
        r"| x\|y\*z\*\_u\_\`v\`\[a\](http://evil.example)\<script\>alert(1)\</script\>"
        r"\&amp;\~\~s\~\~\!\\x1b\[31m@evil.example | 12 |"
    )
    assert "<script>" not in md
    assert "\x1b" not in md


def test_a_log_line_cannot_close_its_code_block(loop: model.IncidentReport) -> None:
    assert loop.incident.trip is not None
    data = replace(
        loop,
        incident=replace(loop.incident, trip=replace(loop.incident.trip, text="a ``` b ```` c")),
    )
    md = markdown.render_markdown(data).splitlines()
    i = md.index("a ``` b ```` c")
    assert md[i - 1] == md[i + 1] == "`````"


def test_md_escape_keeps_plain_addresses_readable() -> None:
    assert markdown.md_escape("bounce-debian-tips=listuser=example.jp@lists.example.org") == (
        "bounce-debian-tips=listuser=example.jp@lists.example.org"
    )


def test_summary_lines_are_the_top_of_the_report(loop: model.IncidentReport) -> None:
    lines = markdown.summary_lines(loop)
    assert lines[0] == (
        "Rule forwarding-loop tripped at 2011-10-16 17:52:52 (Asia/Tokyo): 2 in 600 s "
        "(trip_at 2), demo-incident.log line 73."
    )
    assert "Rule backscatter: 0 of 1,000 deliveries left before the stop." in lines


# ------------------------------------------------------------------------------ SVG


def _svg(data: model.IncidentReport, **kw: int) -> ET.Element:
    return ET.fromstring(svg.render_svg(data, **kw))


def _by_class(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{SVG}{tag}") if e.get("class") == cls]


@pytest.mark.parametrize("rule", DEMO_RULES)
def test_svg_has_one_bar_per_bucket_and_all_matches(demo: Pipeline, rule: str) -> None:
    data = build.from_pipeline(demo, rule, TOKYO)
    chart = svg.chart_buckets(data)
    root = _svg(data)
    bars = _by_class(root, "rect", "bar")
    assert len(bars) == len(chart.counts)
    assert sum(int(b.get("data-count", "-1")) for b in bars) == len(data.matches)
    assert chart.before == chart.after == 0
    # buckets are 10 s, on the clock's tens of seconds, in the log's zone
    starts = [b.get("data-start") for b in bars]
    assert all(s is not None and s.endswith("0") for s in starts)
    heights = [float(b.get("height", "0")) for b in bars]
    tallest = max(range(len(bars)), key=lambda i: heights[i])
    assert int(bars[tallest].get("data-count", "0")) == max(chart.counts)


def test_svg_marks_threshold_and_trip(back: model.IncidentReport) -> None:
    root = _svg(back)
    (threshold,) = _by_class(root, "line", "threshold")
    (trip,) = _by_class(root, "line", "trip")
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    assert "TRIPPED 17:52:53 (10 in 60 s)" in texts
    assert "trip rate: 10 per 60 s = 1.7 per 10 s (bars above it are faster)" in texts
    assert "1.7 / 10 s" in texts
    # the trip line sits 3 s into the 17:52:50 bucket
    bars = _by_class(root, "rect", "bar")
    first = next(b for b in bars if b.get("data-start") == "17:52:50")
    x0, w = float(first.get("x", "0")), float(first.get("width", "0"))
    x = float(trip.get("x1", "0"))
    assert x0 < x < x0 + w
    assert x == pytest.approx(x0 - 1 + (w + 2) * 0.3, abs=0.2)
    # the threshold is the rule's rate at the bucket scale: 10 per 60 s = 1.67 per 10 s
    y_rate = float(threshold.get("y1", "0"))
    baseline = max(float(b.get("y", "0")) + float(b.get("height", "0")) for b in bars)
    forty = next(b for b in bars if b.get("data-count") == "40")
    px_per_match = float(forty.get("height", "0")) / 40
    assert baseline - y_rate == pytest.approx(10 / 6 * px_per_match, abs=0.2)


def test_svg_of_a_live_incident_marks_the_stop(demo: Pipeline) -> None:
    data = build.from_pipeline(demo, "backscatter", TOKYO, latch=_latch_of())
    root = _svg(data)
    assert len(_by_class(root, "line", "stop")) == 1
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    assert "outflow stopped 17:53:05" in texts
    assert not any("(replay)" in t for t in texts)


def test_svg_escapes_hostile_text_and_stays_valid_xml() -> None:
    data = build.from_pipeline(_hostile_pipeline(), "forwarding-loop", UTC)
    data = replace(data, incident=replace(data.incident, host="<h&st>", rule='r"]]>'))
    root = _svg(data)
    assert "<h&st>" in "".join(root.itertext())
    assert not list(root.iter(f"{SVG}script"))


def test_svg_keeps_a_long_incident_to_a_readable_window(loop: model.IncidentReport) -> None:
    """Matches over 12 hours: at most MAX_BUCKETS bars, around the trip, and the rest counted."""
    spread = tuple(
        replace(m, where=replace(m.where, time=m.where.time + i * 40 * 1_000_000))
        for i, m in enumerate(loop.matches)
    )
    data = replace(loop, matches=spread)
    chart = svg.chart_buckets(data)
    assert len(chart.counts) == svg.MAX_BUCKETS
    assert chart.before + chart.after + sum(chart.counts) == len(spread)
    assert chart.after > 0
    assert len(_by_class(_svg(data), "rect", "bar")) == svg.MAX_BUCKETS


def test_svg_with_no_matches_says_so(loop: model.IncidentReport) -> None:
    data = replace(
        loop,
        matches=(),
        incident=replace(loop.incident, trip=None, first_match=None),
        matches_total=0,
    )
    root = _svg(data)
    assert len(_by_class(root, "rect", "bar")) == 1
    assert "no matching lines" in "".join(root.itertext())


def test_svg_bucket_size_is_a_parameter(back: model.IncidentReport) -> None:
    root = _svg(back, bucket_seconds=60)
    bars = _by_class(root, "rect", "bar")
    assert sum(int(b.get("data-count", "0")) for b in bars) == 1000
    assert len(bars) == len(svg.chart_buckets(back, 60).counts) < 10


# ---------------------------------------------------------------------------- folder


def test_write_incident_writes_four_private_files_atomically(
    tmp_path: Path, back: model.IncidentReport
) -> None:
    folder = tmp_path / "incidents" / back.incident.id
    paths = store.write_incident(folder, back)
    assert [p.name for p in paths] == ["report.md", "report.json", "timeline.svg", "evidence.log"]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in paths)  # no tmp
    for p in paths:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert folder.joinpath("evidence.log").read_text(encoding="utf-8").splitlines() == [
        m.where.text for m in back.matches
    ]
    assert store.load_incident(folder) == back
    assert folder.joinpath("report.md").read_text(encoding="utf-8") == markdown.render_markdown(
        back
    )
    ET.parse(folder / "timeline.svg")


def test_write_incident_again_replaces_and_tightens_mode(
    tmp_path: Path, loop: model.IncidentReport, back: model.IncidentReport
) -> None:
    folder = tmp_path / "f"
    folder.mkdir(mode=0o755)
    store.write_incident(folder, loop)
    store.write_incident(folder, back)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert store.load_incident(folder) == back


def test_list_incidents_newest_first_and_says_what_is_unreadable(
    tmp_path: Path, loop: model.IncidentReport
) -> None:
    root = tmp_path / "incidents"
    store.write_incident(root / "20111016T085252Z-forwarding-loop", loop)
    archived = root / "20111017T000000Z-manual"
    archived.mkdir(parents=True)
    (archived / "latch.json").write_text("{}")
    broken = root / "20111018T000000Z-backscatter"
    broken.mkdir()
    (broken / "report.json").write_text("{not json")
    got = store.list_incidents(root)
    assert [(p.name, d is not None) for p, d, _ in got] == [
        ("20111018T000000Z-backscatter", False),
        ("20111017T000000Z-manual", False),
        ("20111016T085252Z-forwarding-loop", True),
    ]
    assert "not valid JSON" in got[0][2]
    assert got[1][2] == "no report.json"
    assert store.list_incidents(tmp_path / "none") == []


def test_a_contained_offender_is_named_with_its_domains_and_how_to_release_it(
    demo: Pipeline,
) -> None:
    raw = _latch()
    raw["actions"] = [
        {
            "kind": "contain-offender",
            "ok": True,
            "summary": "offender sasl-user=bob contained",
            "details": {
                "offender": "sasl-user=bob",
                "count": 60,
                "held": ["2A0000000B"],
                "domains": ["dest-1.example (9)"],
                "applied": {},
            },
            "at": "2011-10-16T08:53:05.250+00:00",
        }
    ]
    data = build.from_pipeline(demo, "backscatter", TOKYO, latch=Latch.from_json(raw))
    assert data.outflow_stopped_at == "2011-10-16T08:53:05.250+00:00"
    md = markdown.render_markdown(data)
    assert (
        "Contained: offender sasl-user=bob only (60 counted; to dest-1.example (9)); 1 of its"
        " queued message(s) held at the trip" in md
    )
    assert "'stormwatch rearm --release-held' also releases its held mail" in md
