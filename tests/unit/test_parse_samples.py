"""Every sample line under tests/data/parse/ with the event it must give.

fail2ban style: each log line is preceded by its expectation,

    #> {"kind": "Delivery", "qid": "2ABCDEF123", "status": "sent"}
    Oct 16 17:52:52 host postfix/smtp[5494]: 2ABCDEF123: to=<...>, ... status=sent (250 ok)

where ``kind`` is the event class and the other keys are fields that must
equal the given values (``time`` as an ISO 8601 string). ``#> none`` means
the line is not an event and not an error (another program, or a Postfix
line of a kind nobody counts); ``#> unparsed`` means a Postfix line that
could not be parsed, which is counted and skipped. Other ``#`` lines are
comments. A file's first line may set the parser's context:

    # context: {"reference": "2011-10-17T00:00:00+00:00", "tz": "UTC"}
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from watcher.core.parse import Parser

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
    if expect in ("none", "unparsed"):
        assert event is None, f"expected no event, got {event}"
        assert parser.stats.unparsed == (1 if expect == "unparsed" else 0)
        return
    assert event is not None, f"no event; unparsed samples: {list(parser.stats.unparsed_samples)}"
    want = json.loads(expect)
    assert type(event).__name__ == want.pop("kind")
    got = asdict(event)
    if "time" in want:
        want_time = datetime.fromisoformat(want.pop("time"))
        assert datetime.fromtimestamp(got["time"] / 1e6, UTC) == want_time
    for key, value in want.items():
        assert got[key] == value, f"{key}: {got[key]!r} != {value!r}"
    assert parser.stats.unparsed == 0


@pytest.mark.parametrize(("context", "line", "expect"), _cases())
def test_sample_line_through_block_scanner(context: dict[str, str], line: str, expect: str) -> None:
    """The replay fast path must agree with the per-line parser on every sample."""
    from watcher.core.pipeline import Pipeline
    from watcher.runtime.rulefiles import load_rules

    rules = [r.rule for r in load_rules()]
    slow = Pipeline.build(rules, _parser(context))
    fast = Pipeline.build(rules, _parser(context))
    slow.run([line], "x")
    fast.run_text(line + "\n", "x")
    assert fast.events == slow.events
    assert fast.parser.stats.lines == slow.parser.stats.lines == 1
    assert fast.correlator.sender_of(_qid(line)) == slow.correlator.sender_of(_qid(line))


def _qid(line: str) -> str:
    parts = line.split(": ")
    return parts[1] if len(parts) > 2 else ""
