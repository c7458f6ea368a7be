"""Every header format a Postfix host writes: read per line and per block alike, and a
Postfix-looking line no format reads is counted as unreadable, never skipped silently.

Lines are written here in each format (as rsyslog, journalctl, postlogd write them);
the messages are the incident's: a null-sender bounce relayed out.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.headershapes import BASE, SHAPES, life
from tests.headershapes import tai64n as _tai64n
from watcher.core.headers import UNKNOWN, block_kind, looks_postfix, read_line
from watcher.core.parse import Parser
from watcher.core.pipeline import Pipeline
from watcher.runtime.rulefiles import bundled_rules_dir, load_rules


def _parser() -> Parser:
    return Parser(reference=datetime(2011, 10, 17, tzinfo=UTC), tz=UTC)


def _per_line(lines: list[str]) -> tuple[list[tuple[str, str, int]], int, int]:
    parser = _parser()
    events = [parser.parse(line) for line in lines]
    got = [(type(e).__name__, e.qid, e.time) for e in events if e is not None]
    return got, parser.stats.unreadable, parser.stats.unparsed


@pytest.mark.parametrize("shape", SHAPES)
def test_each_format_reads_as_the_classic_line_does(shape: str) -> None:
    got, unreadable, unparsed = _per_line(life(SHAPES[shape]))
    want, _, _ = _per_line(life(SHAPES["classic-precise"]))
    if shape in ("classic", "rfc3339-z", "short-iso", "short-full", "classic-unpadded",
                 "loose-tag"):  # fmt: skip
        want = [(k, q, t - BASE.microsecond) for k, q, t in want]  # no fraction written
    if shape == "year-first":
        want = [(k, q, t - 456) for k, q, t in want]  # milliseconds
    assert (got, unreadable, unparsed) == (want, 0, 0)
    assert len(got) == 4


def _rules() -> list[object]:
    return [lr.rule for lr in load_rules([bundled_rules_dir()])]


def _pipeline() -> Pipeline:
    return Pipeline.build(_rules(), _parser())  # type: ignore[arg-type]


@pytest.mark.parametrize("shape", [*SHAPES, "unknown"])
def test_block_path_and_per_line_parser_agree(shape: str) -> None:
    """Pipeline.run_text over a block gives the events and unreadable lines that the
    per-line parser gives line by line: the same judgement on both paths."""
    lines = life(SHAPES.get(shape, _tai64n), 30)
    p = _pipeline()
    p.run_text("\n".join(lines) + "\n", "test")
    per_line, unreadable, unparsed = _per_line(lines)
    assert (p.events, p.parser.stats.unreadable, p.parser.stats.unparsed) == (
        len(per_line), unreadable, unparsed
    )  # fmt: skip
    if shape == "unknown":
        assert (len(per_line), unreadable) == (0, 120)
    else:
        assert (len(per_line), unreadable) == (120, 0)
        assert p.summaries["backscatter"].matches == 30


def test_a_mixed_block_is_read_line_by_line() -> None:
    """A source that changes format within a block: both kinds of lines are read."""
    lines = life(SHAPES["classic"], 5) + life(SHAPES["rfc5424"], 5)[5:] + life(SHAPES["classic"])
    p = _pipeline()
    p.run_text("\n".join(lines) + "\n", "test")
    assert p.events == len(_per_line(lines)[0]) == 40
    assert [c.new for c in p.headers["test"].changes] == ["classic", "rfc5424", "classic"]


def test_unknown_format_is_counted_with_reason_and_said_blind() -> None:
    blind: list[object] = []
    changes: list[object] = []
    p = Pipeline.build(_rules(), _parser(), on_blind=blind.append, on_format=changes.append)  # type: ignore[arg-type]
    lines = life(_tai64n, 3)
    p.run_text("\n".join(lines) + "\n", "mail.log")
    assert p.parser.stats.unreadable == 12
    assert p.parser.stats.unreadable_samples[-1] == ("unknown header format", lines[13])
    assert len(blind) == 1
    assert blind[0] is p.headers["mail.log"]
    p.run_text("\n".join(life(_tai64n, 3)) + "\n", "mail.log", 16)
    assert len(blind) == 1  # once per blind spell
    h = p.headers["mail.log"]
    assert h.format == UNKNOWN
    assert h.blind_first is not None
    assert h.blind_first.lineno == 1
    p.run_text("\n".join(life(SHAPES["classic"])) + "\n", "mail.log", 31)
    assert h.format == "classic"
    assert not h.blind
    assert [c.new for c in changes] == [UNKNOWN, "classic"]  # type: ignore[attr-defined]


def test_what_looks_like_postfix() -> None:
    assert looks_postfix("x mx postfix/smtp[1]: hello")
    assert looks_postfix("<22>1 - mx postfix-out/smtp 5494 - - hello")
    assert looks_postfix("@4000 mx postfix/qmgr 3A452D963D: from=<>")
    assert not looks_postfix("Oct 16 17:52:52 mx dovecot[1]: to=<postfix@example.org>")
    assert not looks_postfix("Oct 16 17:52:52 mx sm-mta[1]: 3A452D963D: from=<postfix/x>")


def test_rfc5424_without_time_is_unreadable_with_its_reason() -> None:
    r = read_line("<22>1 - mx postfix/smtp 5494 - - 3A4B5C6D7E: removed")
    assert (r.line, r.reason) == (None, "RFC 5424 line without a timestamp")
    parser = _parser()
    assert parser.parse("<22>1 - mx postfix/qmgr 5494 - - 3A4B5C6D7E: removed") is None
    assert parser.stats.unreadable_samples[0][0] == "RFC 5424 line without a timestamp"


def test_short_full_zone_names() -> None:
    """UTC and GMT are UTC; another abbreviation is taken in the configured zone."""
    assert read_line("Sun 2011-10-16 17:52:52 GMT mx p[1]: x").line == (
        "2011-10-16T17:52:52+00:00 mx p[1]: x"
    )
    assert read_line("Sun 2011-10-16 17:52:52 JST mx p[1]: x").line == (
        "2011-10-16T17:52:52 mx p[1]: x"
    )


def test_block_kind_looks_at_a_few_lines_only() -> None:
    block = "\n".join(life(SHAPES["classic"], 100)) + "\n"
    assert block_kind(block) == ("classic", 0)
    assert block_kind("\n".join(life(SHAPES["rfc5424"], 2)))[0] is None
    assert block_kind("no postfix here\n") == ("", 0)
