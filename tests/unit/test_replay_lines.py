"""Replay cuts long lines as the live file source does: at 64 KiB, counted, memory bounded."""

from __future__ import annotations

import io
import os
import random
import threading
from pathlib import Path

import pytest

from watcher.runtime import replay as runtime_replay
from watcher.sources.base import TextLine
from watcher.sources.file import FileSource
from watcher.sources.lines import MAX_LINE, Pending, split_lines, whole_lines
from watcher.sources.replay import BLOCK, ReplayInput, line_ranges, read_range

MIB = 1 << 20
# a few MiB without a newline, then short lines, another long one, and a last line without one
CONTENT = (
    b"x" * (3 * MIB + 17)
    + b"\nshort one\n"
    + b"y" * (MAX_LINE + 1)
    + b"\n"
    + b"z" * MAX_LINE
    + b"\nlast, no newline"
)
EXPECTED = [
    "x" * MAX_LINE,
    "short one",
    "y" * MAX_LINE,
    "z" * MAX_LINE,  # exactly MAX_LINE: kept whole, not cut
    "last, no newline",
]


def replayed(inp: ReplayInput) -> list[str]:
    text = "".join(inp.blocks())
    inp.close()
    return text.split("\n")


def live(path: Path, tmp_path: Path) -> tuple[list[str], int]:
    """The same bytes through the live file source, from the start."""
    source = FileSource(
        path, tmp_path / "state.json", start_at_end_first_time=False, use_inotify=False
    )
    source.open()
    try:
        texts: list[str] = []
        while batch := source.poll(0):
            texts += [item.text for item in batch if isinstance(item, TextLine)]
        return texts, source.counters()["long_lines_cut"]
    finally:
        source.close()


def test_a_file_without_newlines_is_cut_and_counted_as_live(tmp_path: Path) -> None:
    path = tmp_path / "mail.log"
    path.write_bytes(CONTENT)
    inp = ReplayInput(str(path))
    assert replayed(inp) == EXPECTED
    assert inp.long_lines_cut == 2
    live_texts, live_cut = live(path, tmp_path)
    assert live_texts == EXPECTED[:-1]  # live holds the last line until its newline comes
    assert live_cut == inp.long_lines_cut


def test_a_pipe_without_newlines_is_cut_and_counted(tmp_path: Path) -> None:
    """Standard input: a real pipe, written in odd-sized pieces by another thread."""
    read_fd, write_fd = os.pipe()

    def write() -> None:
        rng = random.Random(1)
        with os.fdopen(write_fd, "wb") as w:
            pos = 0
            while pos < len(CONTENT):
                step = rng.randrange(1, 3 * BLOCK)
                w.write(CONTENT[pos : pos + step])
                pos += step

    writer = threading.Thread(target=write)
    writer.start()
    try:
        with os.fdopen(read_fd, "rb") as r:
            inp = ReplayInput("-", stdin=r)
            assert replayed(inp) == EXPECTED
    finally:
        writer.join()
    assert inp.long_lines_cut == 2


def test_stdin_like_stream_holds_at_most_one_line_between_blocks() -> None:
    """No block is bigger than a read plus one cut line: memory stays flat."""
    inp = ReplayInput("-", stdin=io.BytesIO(b"n" * (8 * MIB) + b"\nend\n"))
    sizes = [len(block) for block in inp.blocks()]
    assert sizes == [MAX_LINE + 1 + 4]  # the cut line, its newline, "end\n"
    assert inp.long_lines_cut == 1


def test_parallel_ranges_fall_back_to_blocks_without_newlines(tmp_path: Path) -> None:
    path = tmp_path / "mail.log"
    path.write_bytes(CONTENT)
    assert line_ranges(str(path), len(CONTENT), span=MIB) is None  # no readline of 3 MiB
    ok = tmp_path / "ok.log"
    ok.write_bytes(b"a" * (2 * MAX_LINE) + b"\n" + b"b\n" * (MIB // 2))
    ranges = line_ranges(str(ok), ok.stat().st_size, span=4 * MAX_LINE)
    assert ranges is not None
    start, end = ranges[0]
    assert start == 0
    assert end == 4 * MAX_LINE + 1  # just after the newline that follows the span
    text, cut = read_range(str(ok), start, end)
    assert text == "a" * MAX_LINE + "\n" + "b\n" * ((end - 2 * MAX_LINE - 1) // 2)
    assert cut == 1


def test_replay_reports_the_cut_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large enough for the parallel path: it falls back and still counts."""
    from watcher.core.settings import Settings
    from watcher.runtime.rulefiles import load_rules

    path = tmp_path / "mail.log"
    path.write_bytes(CONTENT)
    monkeypatch.setattr(runtime_replay, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    r = runtime_replay.replay(
        [str(path)],
        settings=Settings(),
        rules=[f.rule for f in load_rules()],
        reference=None,
        tz_name="UTC",
        progress=False,
    )
    assert [(i.lines, i.long_lines_cut) for i in r.inputs] == [(5, 2)]


@pytest.mark.parametrize("seed", range(20))
def test_blocks_and_lines_agree(seed: int) -> None:
    """whole_lines (replay) and split_lines (live) cut the same bytes the same way."""
    rng = random.Random(seed)
    data = b"".join(
        b"q" * rng.choice([0, 1, 7, 8, 9, 30]) + (b"\n" if rng.random() < 0.7 else b"")
        for _ in range(200)
    )
    chunks, pos = [], 0
    while pos < len(data):
        step = rng.randrange(1, 40)
        chunks.append(data[pos : pos + step])
        pos += step
    whole, split = Pending(), Pending()
    blocks, lines, cut_w, cut_s = [], [], 0, 0
    for chunk in chunks:
        block, n = whole_lines(whole, chunk, 8)
        blocks.append(block)
        cut_w += n
        got, n = split_lines(split, chunk, 8)
        lines += got
        cut_s += n
    assert b"".join(blocks) == b"".join(line + b"\n" for line in lines)
    assert cut_w == cut_s
    assert all(len(line) <= 8 for line in lines)
    expected = [line[:8] for line in data.split(b"\n")[:-1]]
    assert lines == expected
    assert cut_s == sum(len(line) > 8 for line in data.split(b"\n")[:-1]) + (
        len(data.split(b"\n")[-1]) > 8
    )
