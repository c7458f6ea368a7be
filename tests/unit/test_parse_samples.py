"""Every sample line under tests/data/parse/ with the event it must give.

fail2ban style: each log line is preceded by its expectation,

    #> {"kind": "Delivery", "qid": "2ABCDEF123", "status": "sent"}
    Oct 16 17:52:52 host postfix/smtp[5494]: 2ABCDEF123: to=<...>, ... status=sent (250 ok)

where ``kind`` is the event class and the other keys are fields that must
equal the given values (``time`` as an ISO 8601 string). ``#> none`` means
the line is not an event and not an error (another program, or a Postfix
line of a kind nobody counts); ``#> unparsed`` means a Postfix line that
could not be parsed, which is counted and skipped; ``#> unreadable`` a
Postfix-looking line whose header no format reads (counted apart, with the reason). Other ``#`` lines are
comments. A file's first line may set the parser's context:

    # context: {"reference": "2011-10-17T00:00:00+00:00", "tz": "UTC"}
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from watcher.core.events import Delivery, QueueSender, Removed, Submitted
from watcher.core.origin import ALL_ORIGINS, NO_ORIGINS, OriginWants, parse_origin
from watcher.core.parse import Parser
from watcher.core.pipeline import Pipeline
from watcher.core.scanner import ORIGIN, REMOVED, SENDER, Scanned, scan_block

DATA = Path(__file__).resolve().parent.parent / "data" / "parse"


def _cases() -> list[Any]:
    cases = []
    for path in sorted(DATA.glob("*.log")):
        context: dict[str, str] = {}
        expect: str | None = None
        for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if raw.startswith("# context:"):
                context = json.loads(raw[len("# context:") :])
            elif raw.startswith("#>"):
                expect = raw[2:].strip()
            elif raw.startswith("#") or not raw.strip():
                continue
            else:
                assert expect is not None, f"{path.name}:{n}: line without an expectation"
                cases.append(pytest.param(context, raw, expect, id=f"{path.stem}:{n}"))
                expect = None
    return cases


def _parser(context: dict[str, str]) -> Parser:
    reference = datetime.fromisoformat(context.get("reference", "2026-11-28T12:00:00+00:00"))
    return Parser(reference=reference, tz=ZoneInfo(context.get("tz", "UTC")))


def test_samples_exist() -> None:
    assert len(_cases()) >= 40


@pytest.mark.parametrize(("context", "line", "expect"), _cases())
def test_sample_line(context: dict[str, str], line: str, expect: str) -> None:
    parser = _parser(context)
    event = parser.parse(line)
    if expect in ("none", "unparsed", "unreadable"):
        assert event is None, f"expected no event, got {event}"
        assert parser.stats.unparsed == (1 if expect == "unparsed" else 0)
        assert parser.stats.unreadable == (1 if expect == "unreadable" else 0)
        return
    assert event is not None, f"no event; unparsed samples: {list(parser.stats.unparsed_samples)}"
    want = json.loads(expect)
    assert type(event).__name__ == want.pop("kind")
    got = asdict(event)
    if "time" in want:
        want_time = datetime.fromisoformat(want.pop("time"))
        assert datetime.fromtimestamp(got["time"] / 1e6, UTC) == want_time
    for key, value in want.items():
        if isinstance(value, dict):  # a nested record (an origin): the fields given
            for sub, v in value.items():
                assert got[key][sub] == v, f"{key}.{sub}: {got[key][sub]!r} != {v!r}"
            continue
        assert got[key] == value, f"{key}: {got[key]!r} != {value!r}"
    assert parser.stats.unparsed == 0
    assert parser.stats.unreadable == 0


def _per_line(parser: Parser, line: str) -> list[tuple[str, ...]]:
    """What the per-line parser makes of a line, in the scanner's terms."""
    ev = parser.parse(line)
    if ev is None:
        return []
    if isinstance(ev, QueueSender):
        return [("sender", ev.qid, ev.sender)]
    if isinstance(ev, Removed):
        return [("removed", ev.qid)]
    if isinstance(ev, Delivery):
        return [("delivery", ev.qid)]
    if isinstance(ev, Submitted):
        return [("origin", ev.qid, ev.origin.kind)]
    return [(type(ev).__name__, ev.qid)]


def _through_scanner(
    parser: Parser, line: str, scan: Callable[..., Scanned] = scan_block
) -> list[tuple[str, ...]]:
    """What the block scanner makes of the same line: the kinds it handles itself
    (qmgr's sender, removed; a bad timestamp is handed on) as it found them; the lines it
    hands on, as the parser then judges them (the pipeline parses a delivery line only
    when a rule could count it)."""
    n_lines, events, _, _, _ = scan(line + "\n", False, ALL_ORIGINS)
    assert n_lines == 1
    out: list[tuple[str, ...]] = []
    for ev in events:
        if ev[0] == SENDER and parser.timestamp(str(ev[3])) is not None:
            out.append(("sender", str(ev[1]), str(ev[2])))
        elif ev[0] == REMOVED and parser.timestamp(str(ev[2])) is not None:
            out.append(("removed", str(ev[1])))
        elif (
            ev[0] == ORIGIN
            and parser.timestamp(str(ev[3])) is not None
            and (origin := parse_origin(str(ev[2]))) is not None
        ):
            out.append(("origin", str(ev[1]), origin.kind))
        else:  # as the pipeline does: the per-line parser judges the line
            out += _per_line(parser, line)
    return out


@pytest.mark.parametrize(("context", "line", "expect"), _cases())
def test_block_scanner_agrees_with_the_per_line_parser(
    context: dict[str, str], line: str, expect: str
) -> None:
    """The replay fast path finds each line's event exactly as the per-line parser does."""
    assert _through_scanner(_parser(context), line) == _per_line(_parser(context), line)


def test_the_agreement_check_catches_a_scanner_that_drops_sender_events() -> None:
    """The check above can fail: a scanner that loses qmgr's from=<> lines is caught."""

    def lossy(text: str, collapse: bool = True, origins: OriginWants = NO_ORIGINS) -> Scanned:
        n, events, collapsed, first, last = scan_block(text, collapse, origins)
        return n, [e for e in events if e[0] != SENDER], collapsed, first, last

    senders = [
        (c, line)
        for c, line, e in (p.values for p in _cases())
        if '"QueueSender"' in e and ", size=" in line  # the scanner's own: not expiry lines
    ]
    assert senders
    for context, line in senders:
        good = _per_line(_parser(context), line)
        assert _through_scanner(_parser(context), line, lossy) != good


def test_another_programs_delivery_lines_are_not_counted_as_events() -> None:
    """sendmail's sm-mta logs ``QID: to=<...>`` too: the block scanner must not count it."""
    block = (
        "Nov 27 09:10:20 mx sm-mta[1142]: t4Q76gYC001138: to=<user@example.com>, "
        "delay=00:01:27, mailer=esmtp, dsn=4.0.0, stat=Deferred\n"
        "Nov 27 09:10:21 mx postfix/smtp[1153]: 8E9FA0B1C2: to=<to@example.net>, "
        "relay=mail.example.net[192.0.2.25]:25, delay=2, dsn=2.0.0, status=sent (250 Ok)\n"
    )
    pipeline = Pipeline.build([], _parser({}))
    pipeline.run_text(block, "mail.log")
    assert pipeline.events == 1
