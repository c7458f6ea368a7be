"""Torture FileSource with real files: a writer appends sequence-numbered lines while the
test rotates the log by rename, by copytruncate and by delete+recreate, and stops and
restarts the source (a new FileSource on the same state file) in between.

The consumer commits the last position of every batch it gets, so the guarantee checked
is *exactly once*: every line that reached a file is delivered once, none twice.

What the writer does is what a syslog daemon does: it keeps one ``O_APPEND`` descriptor
and writes whole lines; after a rename or a delete it goes on writing to the old file
until it is told to reopen (logrotate's ``postrotate`` HUP). logrotate's copytruncate is
modelled as it is: copy the file to ``.1`` (the writer keeps writing meanwhile), then
truncate it to 0. Lines written between the end of the copy and the truncation are in
neither file: they are lost unless the source happened to read them first; that window is
inherent to copytruncate and the tests allow exactly those lines, and no others, to be
missing.

What is not exercised because no tail can survive it: deleting the file while the
watcher is down (its unread lines are gone with it) and two rotations between two looks
at the file (with inotify there are microseconds between them). Before a rotation made
while the watcher is down, the watcher is brought up to date with at least one line of
the current file, as on any mail server that is logging.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from watcher.sources.base import TextLine
from watcher.sources.file import FilePosition, FileSource

pytestmark = pytest.mark.integration

SEQ = re.compile(r"seq=(\d{8})")


class Writer:
    """A syslog daemon's view of the log: one O_APPEND descriptor, reopened on request."""

    def __init__(self, path: Path, rng: random.Random) -> None:
        self.path = path
        self.rng = rng
        self.seq = 0
        self.lock = threading.Lock()
        self.fd = -1
        self.reopen()

    def reopen(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def write(self, count: int) -> list[int]:
        written = []
        for _ in range(count):
            pad = "x" * self.rng.randrange(0, 300)
            line = (
                f"Nov 28 04:17:01 mx1 postfix/smtp[{self.seq % 30000}]: seq={self.seq:08d} {pad}\n"
            )
            os.write(self.fd, line.encode())
            written.append(self.seq)
            self.seq += 1
        return written

    def close(self) -> None:
        os.close(self.fd)
        self.fd = -1


def shift(path: Path) -> None:
    """logrotate's renumbering: .1 -> .2 -> ... (kept uncompressed, never deleted here)."""
    numbered = sorted(
        (int(p.name.rsplit(".", 1)[1]), p)
        for p in path.parent.glob(path.name + ".*")
        if p.name.rsplit(".", 1)[1].isdigit()
    )
    for number, old in reversed(numbered):
        os.replace(old, path.with_name(f"{path.name}.{number + 1}"))


def create_empty(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640))


class Consumer:
    """The pipeline's side: poll, record, commit the last position of each batch."""

    def __init__(self, log: Path, state: Path, *, inotify: bool) -> None:
        self.log = log
        self.state = state
        self.inotify = inotify
        self.seen: Counter[int] = Counter()
        self.last: FilePosition | None = None
        self.source: FileSource | None = None
        self.restarts = 0

    def start(self) -> None:
        self.source = FileSource(self.log, self.state, use_inotify=self.inotify, poll_interval=0.01)
        self.source.open()
        assert self.source.event_driven is self.inotify

    def stop(self) -> None:
        assert self.source is not None
        self.source.close()
        self.source = None
        self.restarts += 1

    def poll(self, timeout: float) -> int:
        assert self.source is not None
        batch = self.source.poll(timeout)
        for item in batch:
            assert isinstance(item, TextLine)
            match = SEQ.search(item.text)
            assert match is not None, f"not a line of the writer: {item.text[:80]!r}"
            self.seen[int(match.group(1))] += 1
        if batch:
            position = batch[-1].position
            assert isinstance(position, FilePosition)
            self.source.commit(position)
            self.last = position
        return len(batch)

    def drain(self) -> None:
        while self.poll(0):
            pass

    def catch_up(self, writer: Writer) -> None:
        """Bounded wait until the source has delivered a line just written to the current file.

        Brings the source up to date with the file at the path, as on any logging server,
        before the test stops it and rotates the file while it is down.
        """
        with writer.lock:
            (seq,) = writer.write(1)
        deadline = time.monotonic() + 10
        while seq not in self.seen:
            assert time.monotonic() < deadline, f"line {seq} never came through"
            self.poll(0.05)


def check(seen: Counter[int], expected: set[int], may_miss: set[int], written: int) -> None:
    twice = sorted(seq for seq, n in seen.items() if n > 1)
    assert not twice, f"delivered more than once: {twice[:20]} ({len(twice)} in all)"
    unknown = sorted(set(seen) - set(range(written)))
    assert not unknown, f"delivered but never written: {unknown[:20]}"
    missing = sorted(expected - set(seen))
    assert not missing, f"lost: {missing[:20]} ({len(missing)} of {len(expected)})"
    extra = sorted(set(seen) - expected - may_miss)
    assert not extra, f"delivered but not expected: {extra[:20]}"


# --------------------------------------------------------------- scripted


@pytest.mark.parametrize("inotify", [True, False], ids=["inotify", "polling"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_scripted_rotations_and_restarts(tmp_path: Path, inotify: bool, seed: int) -> None:
    """One thread, random but reproducible: writes, polls, rotations and restarts interleaved."""
    rng = random.Random(seed)
    log = tmp_path / "log" / "mail.log"
    log.parent.mkdir()
    writer = Writer(log, rng)
    before_start = set(writer.write(20))  # last week's lines: a first start skips them
    consumer = Consumer(log, tmp_path / "state" / "mail.json", inotify=inotify)
    consumer.start()
    lost_in_copytruncate: set[int] = set()
    need_look = False  # a rotation happened: the source must look before the next one
    done = Counter[str]()

    def rename_rotation() -> None:
        shift(log)
        log.rename(log.with_name("mail.log.1"))
        writer.write(rng.randrange(0, 5))  # before the HUP: into the renamed file
        create_empty(log)
        writer.reopen()

    def copytruncate_rotation() -> None:
        shift(log)
        shutil.copyfile(log, log.with_name("mail.log.1"))
        lost_in_copytruncate.update(writer.write(rng.randrange(0, 3)))
        os.truncate(log, 0)

    def delete_rotation() -> None:
        log.unlink()
        writer.write(rng.randrange(0, 5))  # before the HUP: into the deleted file
        create_empty(log)
        writer.reopen()

    try:
        for _ in range(400):
            action = rng.choices(
                ["write", "poll", "rename", "copytruncate", "delete", "restart"],
                weights=[40, 25, 7, 7, 5, 10],
            )[0]
            if action in ("rename", "copytruncate", "delete", "restart") and need_look:
                action = "poll"  # no second rotation, and no stop, before the source has looked
            if action == "write":
                writer.write(rng.randrange(1, 40))
            elif action == "poll":
                consumer.drain()
                need_look = False
            elif action == "rename":
                rename_rotation()
                need_look = True
            elif action == "copytruncate":
                copytruncate_rotation()
                need_look = True
            elif action == "delete":
                delete_rotation()
                need_look = True
            else:
                variant = rng.choice(["plain", "writes", "rename", "copytruncate"])
                if variant in ("rename", "copytruncate"):
                    consumer.catch_up(writer)
                consumer.stop()
                writer.write(rng.randrange(0, 20) if variant != "plain" else 0)
                if variant == "rename":
                    rename_rotation()
                elif variant == "copytruncate":
                    copytruncate_rotation()
                writer.write(rng.randrange(0, 20) if variant != "plain" else 0)
                consumer.start()
                need_look = variant != "plain"
                action = f"restart-{variant}"
            done[action] += 1
        writer.write(5)
        consumer.drain()
    finally:
        if consumer.source is not None:
            consumer.stop()
        writer.close()

    assert all(done[op] for op in ("rename", "copytruncate", "delete")), done
    assert sum(n for a, n in done.items() if a.startswith("restart")) >= 10, done
    expected = set(range(writer.seq)) - before_start - lost_in_copytruncate
    check(consumer.seen, expected, set(), writer.seq)


# ---------------------------------------------------------------- threaded


class Witnesses:
    """A read descriptor on every file the test creates, to learn what reached a file."""

    def __init__(self) -> None:
        self.fds: list[int] = []

    def watch(self, path: Path) -> None:
        self.fds.append(os.open(path, os.O_RDONLY | os.O_CLOEXEC))

    def present(self) -> set[int]:
        found: set[int] = set()
        for fd in self.fds:
            size = os.fstat(fd).st_size
            data = os.pread(fd, size, 0).decode()
            found.update(int(m.group(1)) for m in SEQ.finditer(data))
        return found

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)


@pytest.mark.parametrize("inotify", [True, False], ids=["inotify", "polling"])
def test_concurrent_writer_rotations_and_restarts(tmp_path: Path, inotify: bool) -> None:
    """A writer thread at a few thousand lines/s; the test thread rotates, polls, restarts."""
    rng = random.Random(7)
    log = tmp_path / "log" / "mail.log"
    log.parent.mkdir()
    witnesses = Witnesses()
    create_empty(log)
    witnesses.watch(log)
    writer = Writer(log, random.Random(8))
    stop = threading.Event()
    copy_windows = 0  # lines written while a copytruncate was between copy and truncate

    def write_forever() -> None:
        while not stop.is_set():
            with writer.lock:
                writer.write(rng_writer.randrange(1, 8))
            stop.wait(0.001)

    rng_writer = random.Random(9)
    consumer = Consumer(log, tmp_path / "state" / "mail.json", inotify=inotify)
    consumer.start()
    thread = threading.Thread(target=write_forever, name="torture-writer")
    thread.start()
    done = Counter[str]()

    def let_writer_write() -> None:
        """Bounded wait for the writer to write a few lines (into the old file, before the HUP)."""
        target = writer.seq + 3
        limit = time.monotonic() + 5
        while writer.seq < target:
            assert time.monotonic() < limit, "the writer thread stopped writing"
            stop.wait(0.0005)

    def rename_rotation() -> None:
        with writer.lock:
            shift(log)
            log.rename(log.with_name("mail.log.1"))
        let_writer_write()
        with writer.lock:
            create_empty(log)
            witnesses.watch(log)
            writer.reopen()

    def delete_rotation() -> None:
        with writer.lock:
            log.unlink()
        let_writer_write()
        with writer.lock:
            create_empty(log)
            witnesses.watch(log)
            writer.reopen()

    def copytruncate_rotation() -> int:
        with writer.lock:
            shift(log)
        first = writer.seq
        shutil.copyfile(log, log.with_name("mail.log.1"))  # the writer does not wait
        witnesses.watch(log.with_name("mail.log.1"))
        os.truncate(log, 0)
        return writer.seq - first

    try:
        operations = ["rename", "copytruncate", "delete", "restart", "restart-rename"]
        pending: list[str] = []
        deadline = time.monotonic() + 3.0
        next_op = time.monotonic() + 0.1
        while time.monotonic() < deadline or pending:
            consumer.poll(0.05)
            if time.monotonic() < next_op:
                continue
            next_op = time.monotonic() + rng.uniform(0.05, 0.2)
            if not pending:  # every operation once per round, in a random order
                pending = rng.sample(operations, len(operations))
            op = pending.pop()
            if op == "rename":
                rename_rotation()
            elif op == "copytruncate":
                copy_windows += copytruncate_rotation()
            elif op == "delete":
                delete_rotation()
            elif op == "restart":
                consumer.stop()
                consumer.start()
            else:
                consumer.catch_up(writer)
                consumer.stop()
                rename_rotation()
                consumer.start()
            consumer.poll(0.05)  # a look between two rotations
            done[op] += 1
    finally:
        stop.set()
        thread.join()
        try:
            present = witnesses.present()
            wait_until = time.monotonic() + 15
            while not present <= set(consumer.seen) and time.monotonic() < wait_until:
                consumer.poll(0.1)
            consumer.drain()
        finally:
            consumer.stop()
            writer.close()
            witnesses.close()

    assert min(done[op] for op in operations) >= 2, f"not every operation ran twice: {done}"
    assert writer.seq > 3000, f"the writer wrote only {writer.seq} lines"
    lost = set(range(writer.seq)) - present
    assert len(lost) <= copy_windows, (
        f"{len(lost)} lines reached no file, more than the {copy_windows} written during "
        "copytruncate windows: the test's model of logrotate is wrong"
    )
    check(consumer.seen, present, lost, writer.seq)


# ------------------------------------------------------ a second writer


@pytest.mark.parametrize("inotify", [True, False], ids=["inotify", "polling"])
def test_second_writer_keeps_writing_the_renamed_file(tmp_path: Path, inotify: bool) -> None:
    """10,000 lines, half of them by a second writer that never reopens the log.

    The daemon moves to the new file at the rename; the second writer (a second
    process, or rsyslog before its HUP) goes on appending to ``mail.log.1``
    during and after the rotation, and the source is restarted while it does.
    The rotated file is drained until it has gone quiet: every line is read once.
    """
    per_writer = 5000
    log = tmp_path / "log" / "mail.log"
    log.parent.mkdir()
    create_empty(log)
    daemon = Writer(log, random.Random(11))
    second = Writer(log, random.Random(12))
    second.seq = per_writer  # 5000..9999; the daemon writes 0..4999
    consumer = Consumer(log, tmp_path / "state" / "mail.json", inotify=inotify)
    consumer.start()
    stop = threading.Event()
    pace = random.Random(13)

    def write_second() -> None:
        while second.seq < 2 * per_writer and not stop.is_set():
            second.write(min(pace.randrange(1, 8), 2 * per_writer - second.seq))
            stop.wait(0.001)

    thread = threading.Thread(target=write_second, name="second-writer")
    thread.start()
    rotated = restarted = False
    at_rename = 0
    try:
        while daemon.seq < per_writer or thread.is_alive():
            if daemon.seq < per_writer:
                daemon.write(min(3, per_writer - daemon.seq))
            consumer.poll(0.002)
            if not rotated and second.seq >= per_writer + 1000:
                log.rename(log.with_name("mail.log.1"))
                daemon.write(2)  # before its HUP, the daemon too writes the old file
                create_empty(log)
                daemon.reopen()
                rotated = True
                at_rename = second.seq
            elif rotated and not restarted and second.seq >= per_writer + 2500:
                consumer.stop()  # in the grace period: two files open, two offsets
                consumer.start()
                restarted = True
        assert rotated
        assert restarted
        assert second.seq - at_rename > 3000, "the second writer wrote too little after the rename"
        deadline = time.monotonic() + 15
        while len(consumer.seen) < 2 * per_writer and time.monotonic() < deadline:
            consumer.poll(0.05)
        consumer.drain()
        assert consumer.source is not None
        counts = consumer.source.counters()
    finally:
        stop.set()
        thread.join()
        if consumer.source is not None:
            consumer.stop()
        daemon.close()
        second.close()

    check(consumer.seen, set(range(2 * per_writer)), set(), 2 * per_writer)
    assert counts["rotated_lines"] > 0
