"""The run loop with fake sources: batches go through, positions are committed after."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from tests import logshapes as L
from watcher.core.parse import Parser
from watcher.core.pipeline import Pipeline
from watcher.runtime.daemon import Watcher
from watcher.runtime.rulefiles import load_rules
from watcher.sources.base import Item, JournalRecord, TextLine


class FakeSource:
    """Hands out prepared batches, then sets ``done``; records commits."""

    def __init__(self, name: str, batches: list[list[Item]], fail_first: bool = False) -> None:
        self.name = name
        self.batches = list(batches)
        self.commits: list[object] = []
        self.opened = self.closed = False
        self.done = threading.Event()
        self.fail_first = fail_first

    def open(self) -> None:
        self.opened = True

    def poll(self, timeout: float) -> list[Item]:
        if self.fail_first:
            self.fail_first = False
            raise OSError("a passing read error")
        if not self.batches:
            self.done.set()
            self.done.wait(timeout)
            return []
        return self.batches.pop(0)

    def commit(self, position: object) -> None:
        self.commits.append(position)

    def close(self) -> None:
        self.closed = True

    def counters(self) -> dict[str, int]:
        return {"batches_left": len(self.batches)}


def _pipeline() -> Pipeline:
    return Pipeline.build([r.rule for r in load_rules()], Parser(reference=L.REFERENCE))


def _storm_items() -> list[list[Item]]:
    lines: list[str] = []
    for i in range(10):
        lines += L.storm_message(i / 5, i, "list-bounces@lists.example.org")
    items: list[Item] = [TextLine(text, n) for n, text in enumerate(lines, 1)]
    return [items[i : i + 7] for i in range(0, len(items), 7)]


def _run(watcher: Watcher, sources: list[FakeSource]) -> None:
    stop = threading.Event()
    t = threading.Thread(target=watcher.run, args=(stop,))
    t.start()
    for s in sources:
        assert s.done.wait(10), f"{s.name} was not read to its end"
    # the last batch may still be in the queue: the stop drains it
    stop.set()
    t.join(10)
    assert not t.is_alive()


def test_lines_go_through_and_every_position_is_committed_once_at_the_end(tmp_path: Path) -> None:
    src = FakeSource("file:/x", _storm_items())
    p = _pipeline()
    watcher = Watcher(p, [src], state_dir=tmp_path, poll_timeout=0.05, commit_every=3600)
    _run(watcher, [src])
    assert p.switch_tripped is not None
    assert p.switch_tripped.lineno == 9  # the second loop line: each message is 7 lines
    assert src.commits == [7, 70]  # the first batch at once, then (throttled) the last at the stop
    assert src.opened
    assert src.closed
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["state"] == "tripped"
    assert status["lines"] == 70
    assert status["sources"]["file:/x"]["checkpoint_age_seconds"] is not None


def test_journal_records_are_parsed_without_text(tmp_path: Path) -> None:
    record = JournalRecord(
        L.micros(1),
        "mx",
        "postfix/qmgr",
        4220,
        "ABCDEF0123: from=<>, size=1, nrcpt=1 (queue active)",
        "c1",
    )
    src = FakeSource("journal", [[record]])
    p = _pipeline()
    _run(Watcher(p, [src], state_dir=tmp_path, poll_timeout=0.05), [src])
    assert p.correlator.sender_of("ABCDEF0123") == ""
    assert src.commits == ["c1"]
    assert p.parser.stats.lines == 1  # counted once, not by the loop and the parser both


def test_a_failing_source_is_retried_not_fatal(tmp_path: Path) -> None:
    src = FakeSource("file:/x", _storm_items(), fail_first=True)
    p = _pipeline()
    watcher = Watcher(p, [src], state_dir=tmp_path, poll_timeout=0.05)
    _run(watcher, [src])
    assert p.switch_tripped is not None
    status = watcher.status()
    assert status["sources"]["file:/x"]["read_errors"] == 1
