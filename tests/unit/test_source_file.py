"""FileSource with small real files: start, partial and long lines, every rotation, restarts."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from watchdog.observers.api import BaseObserver

from watcher.sources.base import Item, Source, TextLine
from watcher.sources.file import FINGERPRINT_BYTES, FilePosition, FileSource

Factory = Callable[..., FileSource]


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "log" / "mail.log"


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "file.json"


@pytest.fixture
def make(log_path: Path, state_path: Path) -> Iterator[Factory]:
    """Build and open FileSources (polling mode unless asked), closing them all afterwards."""
    log_path.parent.mkdir(exist_ok=True)
    made: list[FileSource] = []

    def factory(**kwargs: Any) -> FileSource:
        kwargs.setdefault("use_inotify", False)
        kwargs.setdefault("poll_interval", 0.01)
        source = FileSource(log_path, state_path, **kwargs)
        made.append(source)
        source.open()
        return source

    yield factory
    for source in made:
        source.close()


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


def lines(n: int, start: int = 0, tag: str = "l") -> bytes:
    return b"".join(f"{tag}{i:05d}\n".encode() for i in range(start, start + n))


def names(n: int, start: int = 0, tag: str = "l") -> list[str]:
    return [f"{tag}{i:05d}" for i in range(start, start + n)]


def drain(source: FileSource, commit: bool = False) -> list[str]:
    """Everything available now, by explicit polls; commits the last position of each batch."""
    out: list[str] = []
    while True:
        batch = source.poll(0)
        if not batch:
            return out
        out.extend(text_of(item) for item in batch)
        if commit:
            source.commit(batch[-1].position)


def text_of(item: Item) -> str:
    assert isinstance(item, TextLine)
    return item.text


# ------------------------------------------------------------------ starting


def test_first_start_skips_existing_lines(make: Factory, log_path: Path) -> None:
    log_path.write_bytes(lines(3))
    source = make()
    assert drain(source) == []
    append(log_path, lines(2, 3))
    assert drain(source) == names(2, 3)


def test_first_start_from_the_beginning_when_asked(make: Factory, log_path: Path) -> None:
    log_path.write_bytes(lines(3))
    assert drain(make(start_at_end_first_time=False)) == names(3)


def test_first_start_keeps_a_line_being_written(make: Factory, log_path: Path) -> None:
    log_path.write_bytes(lines(2) + b"half")
    source = make()
    assert drain(source) == []
    append(log_path, b" done\n")
    assert drain(source) == ["half done"]


def test_first_start_writes_a_checkpoint_at_once(
    make: Factory, log_path: Path, state_path: Path
) -> None:
    log_path.write_bytes(lines(3))
    make().close()
    append(log_path, lines(2, 3))  # written while stopped after the first start: not skipped
    assert drain(make()) == names(2, 3)


def test_checkpoint_written_only_by_commit(make: Factory, log_path: Path, state_path: Path) -> None:
    log_path.write_bytes(b"")
    source = make()
    before = state_path.read_bytes()
    append(log_path, lines(3))
    batch = source.poll(0)
    assert state_path.read_bytes() == before
    source.commit(batch[-1].position)
    saved = json.loads(state_path.read_bytes())
    assert saved["file"]["offset"] == log_path.stat().st_size
    assert source.counters()["commits"] == 1


def test_commit_rejects_foreign_positions(make: Factory, log_path: Path) -> None:
    log_path.touch()
    with pytest.raises(TypeError, match="not a file position"):
        make().commit("cursor")


def test_follows_the_source_protocol(log_path: Path, state_path: Path) -> None:
    source: Source = FileSource(log_path, state_path)  # checked by mypy
    assert source.name == f"file:{log_path}"


def test_poll_before_open_is_an_error(log_path: Path, state_path: Path) -> None:
    source = FileSource(log_path, state_path)  # constructors do no I/O
    assert not state_path.exists()
    with pytest.raises(RuntimeError, match="needs an open source"):
        source.poll(0)


@pytest.mark.parametrize(
    "content",
    [
        b'{"version": 1, "path": 3}',  # a field of the wrong type
        b'{"version": 1, "path": "/x", "fi',  # truncated
        b"",  # empty
        b"\x00\x9f\xff binary",  # not even text
        b'{"version": 1, "path": "LOG", "file": {"dev": 1, "ino": 2, "offset": -5, '
        b'"fp_len": 0, "fp": ""}}',  # a negative offset
    ],
    ids=["shape", "truncated", "empty", "binary", "negative-offset"],
)
def test_a_corrupt_checkpoint_is_moved_aside_and_reading_starts_afresh(
    make: Factory,
    log_path: Path,
    state_path: Path,
    caplog: pytest.LogCaptureFixture,
    content: bytes,
) -> None:
    """No traceback, no exit (a restart loop under systemd): counted, logged, kept aside."""
    log_path.write_bytes(lines(3))
    state_path.parent.mkdir()
    state_path.write_bytes(content.replace(b"LOG", str(log_path).encode()))
    src = make()
    assert src.counters()["checkpoints_corrupt"] == 1
    (aside,) = state_path.parent.glob("file.json.bad-*")
    assert aside.read_bytes() == content.replace(b"LOG", str(log_path).encode())
    assert "file.json" in caplog.text
    assert "first start" in caplog.text
    with log_path.open("ab") as f:
        f.write(b"new line\n")
    assert [text_of(i) for i in src.poll(0)] == ["new line"]  # as on a first start: at the end


def test_checkpoint_of_another_file_is_ignored(
    make: Factory, log_path: Path, state_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log_path.write_bytes(lines(3))
    state_path.parent.mkdir()
    state_path.write_text('{"version": 1, "path": "/elsewhere", "file": null}')
    source = make()
    assert "is for /elsewhere" in caplog.text
    assert drain(source) == []


# --------------------------------------------------------------- line shapes


def test_partial_line_held_until_its_newline(make: Factory, log_path: Path) -> None:
    log_path.touch()
    source = make()
    append(log_path, b"one\ntw")
    assert drain(source) == ["one"]
    append(log_path, b"o")
    assert drain(source) == []
    append(log_path, b"\nthree\n")
    assert drain(source) == ["two", "three"]


def test_long_lines_are_cut_and_counted(make: Factory, log_path: Path) -> None:
    log_path.touch()
    source = make(max_line=10, chunk_size=4)
    append(log_path, b"short\n" + b"x" * 25 + b"\nafter\n")
    assert drain(source) == ["short", "x" * 10, "after"]
    append(log_path, b"y" * 12)  # over the limit and no newline yet
    assert drain(source) == []
    append(log_path, b"y" * 30 + b"\nend\n")
    assert drain(source) == ["y" * 10, "end"]
    assert source.counters()["long_lines_cut"] == 2


def test_long_line_position_is_after_the_whole_line(
    make: Factory, log_path: Path, state_path: Path
) -> None:
    log_path.touch()
    source = make(max_line=4)
    append(log_path, b"abcdefgh\nnext\n")
    first = source.poll(0)[0]
    assert isinstance(first.position, FilePosition)
    assert first.position.offset == 9


def test_invalid_utf8_is_replaced_and_counted(make: Factory, log_path: Path) -> None:
    log_path.touch()
    source = make()
    append(log_path, b"caf\xe9 \xff\nok\n")
    assert drain(source) == ["caf\ufffd \ufffd", "ok"]
    assert source.counters()["invalid_utf8_lines"] == 1


def test_big_backlog_comes_in_bounded_batches_in_order(make: Factory, log_path: Path) -> None:
    log_path.touch()
    source = make(max_batch_bytes=100, chunk_size=7)
    append(log_path, lines(50))
    batches = []
    while batch := source.poll(0):
        batches.append(batch)
    assert len(batches) == 4  # 350 bytes, 100 per poll
    assert [text_of(i) for b in batches for i in b] == names(50)


# ----------------------------------------------------------------- rotation


def test_rename_rotation_finishes_the_old_file_first(make: Factory, log_path: Path) -> None:
    now = [0.0]
    log_path.touch()
    source = make(clock=lambda: now[0])
    append(log_path, lines(2))
    assert drain(source) == names(2)
    rotated = log_path.with_name("mail.log.1")
    with log_path.open("ab") as writer:  # a syslog daemon keeps its descriptor until HUP
        writer.write(lines(1, 2))
        writer.flush()
        log_path.rename(rotated)
        writer.write(lines(1, 3))  # after the rename, before the reopen
        writer.flush()
        log_path.touch()  # logrotate "create"
        assert drain(source) == names(2, 2)  # the old file is still followed...
        writer.write(lines(1, 5))  # ...even while the new one is empty
    append(log_path, lines(2, 6))  # the daemon reopened: new file
    assert drain(source) == names(1, 5) + names(2, 6)
    counts = source.counters()
    assert counts["rotations"] == 1
    assert counts["rotated_lines"] == 3
    now[0] = 6.0  # the old file has been quiet for longer than rotated_quiet (5 s)...
    assert drain(source) == []
    append(rotated, b"late line, never read\n")
    assert drain(source) == []  # ...so it was closed


def test_rotated_file_still_written_after_the_new_one_has_data(
    make: Factory, log_path: Path
) -> None:
    """A second writer holds the renamed file open: read until it has been quiet 5 s."""
    now = [0.0]
    log_path.touch()
    source = make(clock=lambda: now[0])
    rotated = log_path.with_name("mail.log.1")
    with log_path.open("ab") as second:
        second.write(lines(2))
        second.flush()
        assert drain(source) == names(2)
        log_path.rename(rotated)
        append(log_path, lines(2, 100, "new"))  # the daemon has moved to the new file...
        second.write(lines(2, 2))  # ...the second writer has not
        second.flush()
        assert drain(source) == names(2, 2) + names(2, 100, "new")  # the old file first
        now[0] = 4.0
        second.write(lines(1, 4))
        second.flush()
        assert drain(source) == names(1, 4)
        now[0] = 9.0  # 5 s since its last data: not yet more than rotated_quiet
        second.write(lines(1, 5))
        second.flush()
        assert drain(source) == names(1, 5)
        now[0] = 14.5
        assert drain(source) == []  # quiet for 5.5 s: closed
        second.write(b"too late\n")
        second.flush()
    append(log_path, lines(1, 102, "new"))
    assert drain(source) == names(1, 102, "new")
    counts = source.counters()
    assert counts["rotated_lines"] == 4
    assert counts["lines"] == 9


def test_rotated_file_closed_after_grace_without_new_data(make: Factory, log_path: Path) -> None:
    now = [0.0]
    log_path.touch()
    source = make(rotate_grace=60, clock=lambda: now[0])
    log_path.rename(log_path.with_name("mail.log.1"))
    log_path.touch()
    assert drain(source) == []
    append(log_path.with_name("mail.log.1"), b"still old\n")
    assert drain(source) == ["still old"]
    now[0] = 61.0
    assert drain(source) == []
    append(log_path.with_name("mail.log.1"), b"too late\n")
    assert drain(source) == []


def test_last_line_without_newline_flushed_when_old_file_closes(
    make: Factory, log_path: Path
) -> None:
    now = [0.0]
    log_path.touch()
    source = make(clock=lambda: now[0])
    append(log_path, b"complete\ncut short")
    assert drain(source) == ["complete"]
    log_path.rename(log_path.with_name("mail.log.1"))
    log_path.write_bytes(b"new\n")
    assert drain(source) == ["new"]  # a writer still holding the old file may finish it
    now[0] = 6.0
    assert drain(source) == ["cut short"]
    assert source.counters()["partial_lines_flushed"] == 1


def test_delete_and_recreate(make: Factory, log_path: Path) -> None:
    log_path.touch()
    source = make()
    with log_path.open("ab") as writer:
        writer.write(lines(2))
        writer.flush()
        log_path.unlink()
        writer.write(lines(1, 2))  # into the deleted file, still open here and in the source
        writer.flush()
    assert drain(source) == names(3)
    assert source.counters()["waiting_for_file"] == 1
    log_path.write_bytes(lines(2, 3))
    assert drain(source) == names(2, 3)
    assert source.counters()["waiting_for_file"] == 0


def test_copytruncate_reads_the_copy_then_the_new_content(make: Factory, log_path: Path) -> None:
    log_path.touch()
    source = make()
    append(log_path, lines(2))
    assert drain(source) == names(2)
    append(log_path, lines(3, 2))  # not read yet when logrotate copies
    shutil.copyfile(log_path, log_path.with_name("mail.log.1"))
    os.truncate(log_path, 0)
    append(log_path, lines(1, 5))
    assert drain(source) == names(3, 2) + names(1, 5)
    assert source.counters()["truncations"] == 1


def test_copytruncate_of_a_file_empty_at_the_last_look(make: Factory, log_path: Path) -> None:
    log_path.touch()
    log_path.with_name("mail.log.1").write_bytes(b"an older rotation\n")
    source = make()
    assert drain(source) == []  # looked: empty
    append(log_path, lines(3))
    log_path.with_name("mail.log.1").unlink()  # delaycompress: .1 -> .2.gz, say
    shutil.copyfile(log_path, log_path.with_name("mail.log.1"))
    os.truncate(log_path, 0)  # size and first bytes tell nothing: nothing had been read
    append(log_path, lines(1, 3))
    assert drain(source) == names(4)


def test_truncated_and_regrown_past_the_offset_is_noticed(make: Factory, log_path: Path) -> None:
    log_path.touch()
    source = make()
    append(log_path, lines(2))
    assert drain(source) == names(2)
    os.truncate(log_path, 0)  # no copy: the lines after our offset are simply gone
    append(log_path, lines(5, 100))  # longer than before: only the first bytes tell
    assert drain(source) == names(5, 100)
    assert source.counters()["truncations"] == 1


def test_symlink_swap(make: Factory, tmp_path: Path, log_path: Path) -> None:
    targets = tmp_path / "real"
    targets.mkdir()
    first, second = targets / "a.log", targets / "b.log"
    first.touch()
    log_path.symlink_to(first)
    source = make()
    append(first, lines(2))
    assert drain(source) == names(2)
    second.write_bytes(b"")
    tmp_link = log_path.with_name("tmp-link")
    tmp_link.symlink_to(second)
    append(first, lines(1, 2))
    tmp_link.replace(log_path)  # atomic swap, as `ln -sfn` + `mv -T` does
    append(second, lines(2, 3))
    assert drain(source) == names(3, 2)
    assert source.counters()["rotations"] == 1


def test_inotify_follows_a_symlink_into_another_directory(
    make: Factory, tmp_path: Path, log_path: Path
) -> None:
    targets = tmp_path / "real"
    targets.mkdir()
    target = targets / "a.log"
    target.touch()
    log_path.symlink_to(target)
    source = make(use_inotify=True)
    timer = threading.Timer(0.05, append, (target, b"via link\n"))
    started = time.monotonic()
    timer.start()
    try:
        got = source.poll(10.0)
    finally:
        timer.join()
    assert [text_of(i) for i in got] == ["via link"]
    assert time.monotonic() - started < 5.0, "no inotify event from the symlink's target"


def test_absent_file_is_awaited_and_read_from_start(
    make: Factory, log_path: Path, state_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="watcher.sources.file")
    source = make()
    for _ in range(3):
        assert drain(source) == []
    assert caplog.text.count("waiting for it") == 1
    assert source.counters()["waiting_for_file"] == 1
    source.close()
    restarted = make()  # still absent: the first start is over all the same
    log_path.write_bytes(lines(2))
    assert drain(restarted) == names(2)


def test_not_waiting_for_the_file_after_a_clean_stop(make: Factory, log_path: Path) -> None:
    source = make()  # the file is absent
    assert source.counters()["waiting_for_file"] == 1
    source.close()
    assert source.counters()["waiting_for_file"] == 0  # the last status written says so


def test_cannot_open_is_logged_once_per_change(
    make: Factory,
    log_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unreadable file is polled for, but said once: again when the error changes or ends."""
    caplog.set_level(logging.INFO, logger="watcher.sources.file")
    real_open = os.open
    error = [errno.EACCES]

    def refusing_open(path: Any, flags: int, *args: Any) -> int:
        if os.fspath(path) == str(log_path) and error[0]:
            raise OSError(error[0], os.strerror(error[0]), str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refusing_open)
    log_path.write_bytes(lines(1))
    source = make()
    for _ in range(5):
        assert drain(source) == []
    assert caplog.text.count("cannot open") == 1
    error[0] = errno.EIO
    for _ in range(3):
        assert drain(source) == []
    assert caplog.text.count("cannot open") == 2
    assert caplog.text.count("Input/output error") == 1
    error[0] = 0
    append(log_path, lines(1, 1))
    assert drain(source) == names(2)  # read from the start, as a file that appeared
    assert "can be opened again" in caplog.text
    error[0] = errno.EACCES
    log_path.unlink()
    log_path.write_bytes(lines(1, 2))  # another file: opened anew, refused anew
    for _ in range(3):
        drain(source)
    assert caplog.text.count("cannot open") == 3


def test_absent_at_first_start_then_appeared_while_stopped(make: Factory, log_path: Path) -> None:
    make().close()
    log_path.write_bytes(lines(2))
    assert drain(make()) == names(2)


# ------------------------------------------------------------------ restarts


def test_restart_resumes_exactly_after_the_commit(make: Factory, log_path: Path) -> None:
    log_path.touch()
    source = make()
    append(log_path, lines(5))
    batch = source.poll(0)
    source.commit(batch[2].position)  # the pipeline handled three of five
    source.close()
    append(log_path, lines(2, 5))
    assert drain(make()) == names(4, 3)


@pytest.mark.parametrize("last", ["old", "new"])
def test_restart_while_a_rotated_file_is_still_written(
    make: Factory, log_path: Path, state_path: Path, last: str
) -> None:
    """Stopped in the grace period: both files resume at their own offsets, none twice."""
    log_path.touch()
    source = make()
    rotated = log_path.with_name("mail.log.1")
    with log_path.open("ab") as second:
        second.write(lines(2))
        second.flush()
        assert drain(source, commit=True) == names(2)
        log_path.rename(rotated)
        append(log_path, lines(2, 100, "new"))
        second.write(lines(2, 2))
        second.flush()
        assert drain(source, commit=True) == names(2, 2) + names(2, 100, "new")
        if last == "old":  # the last batch before the stop ends in the rotated file
            second.write(lines(1, 4))
            second.flush()
            assert drain(source, commit=True) == names(1, 4)
        saved = json.loads(state_path.read_bytes())["file"]
        assert len(saved["also"]) == 1  # the other file, at its own offset
        assert {saved["ino"], saved["also"][0]["ino"]} == {
            rotated.stat().st_ino,
            log_path.stat().st_ino,
        }
        source.close()
        # while stopped: both writers go on
        second.write(lines(2, 10))
        second.flush()
    append(log_path, lines(2, 200, "new"))
    assert drain(make()) == names(2, 10) + names(2, 200, "new")  # the rotated file first


def test_restart_after_rename_while_stopped_finishes_the_rotated_file(
    make: Factory, log_path: Path
) -> None:
    log_path.touch()
    source = make()
    append(log_path, lines(3))
    assert drain(source, commit=True) == names(3)
    source.close()
    append(log_path, lines(2, 3))
    log_path.rename(log_path.with_name("mail.log.1"))
    log_path.write_bytes(lines(2, 5))
    assert drain(make(), commit=True) == names(4, 3)


def test_restart_after_dateext_rotation_with_a_glob_suffix(make: Factory, log_path: Path) -> None:
    log_path.touch()
    source = make(rotated_suffixes=(".1", "-[0-9]*"))
    append(log_path, lines(3))
    drain(source, commit=True)
    source.close()
    append(log_path, lines(2, 3))
    log_path.rename(log_path.with_name("mail.log-20261128"))
    log_path.with_name("mail.log-20261121.gz").write_bytes(b"\x1f\x8b compressed, never read")
    log_path.write_bytes(lines(1, 5))
    assert drain(make(rotated_suffixes=(".1", "-[0-9]*"))) == names(3, 3)


def test_restart_after_copytruncate_while_stopped_reads_the_copy(
    make: Factory, log_path: Path
) -> None:
    log_path.touch()
    source = make()
    append(log_path, lines(3))
    assert drain(source, commit=True) == names(3)
    source.close()
    append(log_path, lines(2, 3))
    shutil.copyfile(log_path, log_path.with_name("mail.log.1"))
    os.truncate(log_path, 0)
    append(log_path, lines(8, 5))  # longer than the old offset: same inode, other content
    assert drain(make(), commit=True) == names(10, 3)


def test_restart_when_the_checkpointed_file_is_gone(
    make: Factory, log_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log_path.touch()
    source = make()
    append(log_path, lines(3))
    drain(source, commit=True)
    source.close()
    log_path.unlink()
    log_path.write_bytes(lines(2, 10))
    restarted = make()
    assert drain(restarted) == names(2, 10)
    assert restarted.counters()["checkpoints_lost"] == 1
    assert "were missed" in caplog.text


def test_inode_reuse_is_not_taken_for_the_same_file(
    make: Factory, log_path: Path, state_path: Path
) -> None:
    log_path.touch()
    source = make()
    append(log_path, lines(3))
    drain(source, commit=True)
    source.close()
    saved = json.loads(state_path.read_bytes())
    saved["file"]["ino"] = log_path.stat().st_ino  # as if reused: same inode...
    os.truncate(log_path, 0)
    append(log_path, lines(4, 50))  # ...other content
    state_path.write_text(json.dumps(saved))
    assert drain(make()) == names(4, 50)


def test_fingerprint_of_a_short_file_that_grows(
    make: Factory, log_path: Path, state_path: Path
) -> None:
    log_path.touch()
    source = make()
    append(log_path, b"tiny\n")
    assert drain(source, commit=True) == ["tiny"]
    assert json.loads(state_path.read_bytes())["file"]["fp_len"] == 5
    source.close()
    big = lines(FINGERPRINT_BYTES // 7 + 10)  # grows past the fingerprint while stopped
    append(log_path, big)
    restarted = make()
    got = drain(restarted, commit=True)
    assert got == [line.decode() for line in big.splitlines()]
    assert json.loads(state_path.read_bytes())["file"]["fp_len"] == FINGERPRINT_BYTES
    restarted.close()
    append(log_path, b"last\n")
    assert drain(make()) == ["last"]


# ------------------------------------------------------------------ inotify


def test_inotify_wakes_poll_on_append(make: Factory, log_path: Path) -> None:
    log_path.touch()
    source = make(use_inotify=True)
    assert source.event_driven
    timer = threading.Timer(0.05, append, (log_path, b"woken\n"))
    started = time.monotonic()
    timer.start()
    try:
        got = source.poll(10.0)
    finally:
        timer.join()
    elapsed = time.monotonic() - started
    assert [text_of(i) for i in got] == ["woken"]
    assert elapsed < 5.0, f"poll() took {elapsed:.2f}s: inotify did not wake it"


def test_inotify_ignores_other_files_in_the_directory(make: Factory, log_path: Path) -> None:
    log_path.touch()
    source = make(use_inotify=True)
    other = log_path.with_name("syslog")
    timer = threading.Timer(0.02, append, (other, b"noise\n"))
    timer.start()
    try:
        assert source.poll(0.3) == []
    finally:
        timer.join()


def test_inotify_sees_rotation_and_new_file(make: Factory, log_path: Path) -> None:
    log_path.touch()
    source = make(use_inotify=True)
    append(log_path, b"a\n")
    assert [text_of(i) for i in source.poll(5)] == ["a"]

    def rotate() -> None:
        log_path.rename(log_path.with_name("mail.log.1"))
        log_path.write_bytes(b"b\n")

    timer = threading.Timer(0.05, rotate)
    timer.start()
    try:
        got = source.poll(10.0)
    finally:
        timer.join()
    assert [text_of(i) for i in got] == ["b"]


class _NoWatches:
    def __call__(self) -> BaseObserver:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")


def test_falls_back_to_polling_when_inotify_fails(
    make: Factory, log_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log_path.touch()
    source = make(use_inotify=None, observer_factory=_NoWatches(), mounts=list)
    assert not source.event_driven
    assert source.counters()["inotify_failures"] == 1
    assert "polling every" in caplog.text
    append(log_path, b"x\n")
    assert drain(source) == ["x"]


def test_inotify_forced_but_failing_raises(make: Factory, log_path: Path) -> None:
    log_path.touch()
    with pytest.raises(OSError, match="watch limit"):
        make(use_inotify=True, observer_factory=_NoWatches())


def test_network_file_system_means_polling(make: Factory, log_path: Path) -> None:
    log_path.touch()
    mounts = [("/", "ext4"), (str(log_path.parent), "nfs4")]
    source = make(use_inotify=None, mounts=lambda: mounts)
    assert not source.event_driven


def test_local_file_system_means_inotify(make: Factory, log_path: Path) -> None:
    log_path.touch()
    source = make(use_inotify=None, mounts=lambda: [("/", "ext4")])
    assert source.event_driven


def test_polling_mode_waits_for_the_timeout(make: Factory, log_path: Path) -> None:
    log_path.touch()
    source = make(poll_interval=0.05)
    started = time.monotonic()
    assert source.poll(0.2) == []
    assert time.monotonic() - started >= 0.19


def test_close_is_idempotent_and_commit_still_works(
    make: Factory, log_path: Path, state_path: Path
) -> None:
    log_path.touch()
    source = make(use_inotify=True)
    append(log_path, b"x\n")
    batch = source.poll(0)
    source.close()
    source.close()
    source.commit(batch[-1].position)  # the pipeline may flush after the source closed
    assert json.loads(state_path.read_bytes())["file"]["offset"] == 2


def test_a_path_that_exists_but_cannot_be_read_is_not_said_to_be_missing(
    make: Factory, log_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log_path.mkdir()  # there, but not a file a source can read
    with caplog.at_level(logging.WARNING, logger="watcher.sources"):
        source = make()
        drain(source)
    assert f"{log_path} is not a regular file" in caplog.text
    assert "does not exist" not in caplog.text
    log_path.rmdir()
    with caplog.at_level(logging.WARNING, logger="watcher.sources"):
        drain(source)
    assert "file does not exist (yet): waiting for it" in caplog.text  # now it is missing
