"""JournalSource against a real journal and a real journalctl.

``systemd-journal-remote`` (Debian package ``systemd-journal-remote``) writes a journal
file from export-format input; ``journalctl --file`` follows it as it grows. Each
``append`` below runs journal-remote once, appending entries to the same file.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness.journal import BOOT_ID, Journal, journal_tools
from watcher.sources.base import JournalRecord, Source
from watcher.sources.journal import JournalSource, Untrusted, default_accept, parse_entry


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    remote, _ = journal_tools()
    journal = Journal(tmp_path / "test.journal", remote)
    journal.say("the journal file exists", program="kernel")
    return journal


@pytest.fixture
def sources(tmp_path: Path, journal: Journal) -> Iterator[list[JournalSource]]:
    made: list[JournalSource] = []
    yield made
    for source in made:
        source.close()


def start(
    made: list[JournalSource], journal: Journal, state: Path, **kwargs: object
) -> JournalSource:
    _, journalctl = journal_tools()
    kwargs.setdefault("backoff_initial", 0.05)
    kwargs.setdefault("extra_args", ("--file", str(journal.path)))
    source = JournalSource(state, journalctl=(journalctl,), **kwargs)  # type: ignore[arg-type]
    made.append(source)
    source.open()
    return source


def collect(
    source: JournalSource, count: int, journal: Journal, timeout: float = 20.0
) -> list[JournalRecord]:
    """Poll until ``count`` records came, or fail saying what did come.

    A journalctl that has just started can miss the change notification for entries
    appended while it reads its backlog: it shows them at the next write to the journal
    (on a live host, within moments). When a second passes with nothing, the test writes
    such an entry, one the source filters out, as a live journal would.
    """
    got: list[JournalRecord] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, (
            f"only {len(got)} of {count} records after {timeout}s: "
            f"{[r.message for r in got]}; counters {source.counters()}"
        )
        batch = source.poll(min(remaining, 1.0))
        if not batch:
            journal.say("another host's business", program="kernel")
        for item in batch:
            assert isinstance(item, JournalRecord)
            got.append(item)
    return got


def until_sentinel(source: JournalSource, journal: Journal) -> list[str]:
    """Everything that comes before a sentinel entry appended now: proves nothing else is due."""
    journal.say("sentinel")
    messages: list[str] = []
    while not messages or messages[-1] != "sentinel":
        messages.extend(r.message for r in collect(source, 1, journal))
    return messages[:-1]


# ------------------------------------------------------------ real journal


@pytest.mark.integration
def test_postfix_records_appear_with_their_fields(
    journal: Journal, sources: list[JournalSource], tmp_path: Path
) -> None:
    journal.say("before the first start")
    source = start(sources, journal, tmp_path / "j.json")
    entries = [
        journal.entry("a: to=<x@example.org>, status=sent"),
        journal.entry("noise", program="CRON"),
        journal.entry("b", program="postfix-out/smtp"),
        journal.entry("c", program="postfix/submission/smtpd"),
        journal.entry("Suppressed 42 messages from postfix@-.service", program="systemd-journald"),
        journal.entry(b"caf\xe9", program="postfix/qmgr"),
    ]
    no_pid = journal.entry("d", program="postfix/local")
    del no_pid["_PID"]
    no_pid["SYSLOG_PID"] = "77"
    journal.append(*entries, no_pid)
    got = collect(source, 6, journal)
    assert [(r.program, r.message) for r in got] == [
        ("postfix/smtp", "a: to=<x@example.org>, status=sent"),
        ("postfix-out/smtp", "b"),
        ("postfix/submission/smtpd", "c"),
        ("systemd-journald", "Suppressed 42 messages from postfix@-.service"),
        ("postfix/qmgr", "caf\ufffd"),
        ("postfix/local", "d"),
    ]
    assert [r.pid for r in got] == [4242] * 5 + [77]
    assert {r.host for r in got} == {"mx1"}
    assert got[0].time == int(str(entries[0]["__REALTIME_TIMESTAMP"]))
    assert all(isinstance(r.position, str) and r.position.startswith("s=") for r in got)
    assert until_sentinel(source, journal) == []
    assert source.counters()["entries_skipped"] >= 1  # CRON


@pytest.mark.integration
def test_entries_from_other_uids_are_counted_and_not_read(
    journal: Journal, sources: list[JournalSource], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``logger -t postfix/local`` as nobody: journald records the sender's _UID."""
    source = start(sources, journal, tmp_path / "j.json", trusted_uids={0, 107})
    loop = "ABC: to=<x@localhost>, dsn=5.4.6, status=bounced (mail forwarding loop for x@localhost)"
    journal.append(
        journal.entry("from postfix", program="postfix/smtp", _UID="107", _COMM="smtp"),
        journal.entry(loop, program="postfix/local", _UID="65534", _COMM="logger"),
        journal.entry("from root", program="postfix/master", _UID="0", _COMM="master"),
    )
    got = collect(source, 2, journal)
    assert [r.message for r in got] == ["from postfix", "from root"]
    assert until_sentinel(source, journal) == []
    assert source.counters()["untrusted_entries"] == 1
    assert "'postfix/local' entry from uid 65534 (logger), not Postfix's" in caplog.text


@pytest.mark.integration
def test_restart_resumes_after_the_committed_cursor(
    journal: Journal, sources: list[JournalSource], tmp_path: Path
) -> None:
    state = tmp_path / "j.json"
    first = start(sources, journal, state)
    journal.say(*(f"m{i}" for i in range(1, 11)))
    got = collect(first, 10, journal)
    assert [r.message for r in got] == [f"m{i}" for i in range(1, 11)]
    first.commit(got[6].position)  # the pipeline went through m1..m7
    first.close()
    assert json.loads(state.read_text())["cursor"] == got[6].position
    journal.say(*(f"m{i}" for i in range(11, 16)))  # while stopped
    second = start(sources, journal, state)
    journal.say(*(f"m{i}" for i in range(16, 21)))
    again = collect(second, 13, journal)
    assert [r.message for r in again] == [f"m{i}" for i in range(8, 21)]
    assert until_sentinel(second, journal) == []


@pytest.mark.integration
def test_commit_after_every_batch_gives_exactly_once(
    journal: Journal, sources: list[JournalSource], tmp_path: Path
) -> None:
    state = tmp_path / "j.json"
    seen: list[str] = []
    for round_ in range(3):
        source = start(sources, journal, state)
        journal.say(*(f"r{round_}-{i}" for i in range(5)))
        batch = collect(source, 5, journal)
        source.commit(batch[-1].position)
        seen.extend(r.message for r in batch)
        source.close()
        journal.say(f"down{round_}")
    last = start(sources, journal, state)
    seen.extend(until_sentinel(last, journal))
    expected = [f"r{r}-{i}" for r in range(3) for i in range(5)]
    expected = [m for r in range(3) for m in [*expected[r * 5 : r * 5 + 5], f"down{r}"]]
    assert seen == expected


@pytest.mark.integration
def test_killed_journalctl_is_restarted_without_loss_or_replay(
    journal: Journal,
    sources: list[JournalSource],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="watcher.sources.journal")
    source = start(sources, journal, tmp_path / "j.json")
    journal.say("k1", "k2", "k3")
    assert [r.message for r in collect(source, 3, journal)] == ["k1", "k2", "k3"]
    pid = source.process_id
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    journal.say("k4", "k5")  # written while journalctl is dead or restarting
    assert [r.message for r in collect(source, 2, journal)] == ["k4", "k5"]
    assert source.counters()["restarts"] == 1
    assert source.process_id not in (None, pid)
    assert "journalctl exited with status -9" in caplog.text
    assert until_sentinel(source, journal) == []


@pytest.mark.integration
def test_journal_rotation_is_followed_and_resumed_across(
    sources: list[JournalSource], tmp_path: Path
) -> None:
    remote, _ = journal_tools()
    directory = tmp_path / "journal"
    directory.mkdir()
    journal = Journal(directory / "system.journal", remote)
    journal.say("the journal file exists", program="kernel")
    state = tmp_path / "j.json"
    source = start(sources, journal, state, extra_args=("--directory", str(directory)))
    journal.say("a1", "a2")
    got = collect(source, 2, journal)
    source.commit(got[-1].position)  # the cursor is in the file about to be archived
    # journald's rotation: the active file is renamed to its archived name, a new one begins
    journal.path.rename(directory / f"system@{BOOT_ID}-0000000000000001-0005f5e0ffbeb8a9.journal")
    journal.say("b1", "b2")
    assert [r.message for r in collect(source, 2, journal)] == ["b1", "b2"]
    source.close()
    journal.say("c1")
    again = start(sources, journal, state, extra_args=("--directory", str(directory)))
    assert until_sentinel(again, journal) == ["b1", "b2", "c1"]
    assert again.counters()["restarts"] == 0


@pytest.mark.integration
def test_first_start_point_survives_a_restart_before_any_entry(
    journal: Journal, sources: list[JournalSource], tmp_path: Path
) -> None:
    journal.say("last week's storm")
    state = tmp_path / "j.json"
    start(sources, journal, state).close()
    journal.say("while stopped")
    source = start(sources, journal, state)
    assert until_sentinel(source, journal) == ["while stopped"]


@pytest.mark.integration
def test_refused_cursor_falls_back_to_now(
    journal: Journal, sources: list[JournalSource], tmp_path: Path
) -> None:
    state = tmp_path / "j.json"
    state.write_text('{"version": 1, "cursor": "not-a-cursor", "since_us": null}')
    source = start(sources, journal, state)
    deadline = time.monotonic() + 20
    while source.counters()["cursor_resets"] == 0:
        assert time.monotonic() < deadline, f"cursor never reset: {source.counters()}"
        assert source.poll(0.1) == []
    assert until_sentinel(source, journal) == []


@pytest.mark.integration
def test_exact_identifiers_are_matched_by_journalctl(
    journal: Journal, sources: list[JournalSource], tmp_path: Path
) -> None:
    source = start(sources, journal, tmp_path / "j.json", identifiers=["postfix/qmgr"])
    journal.say("x", program="postfix/smtp")
    journal.say("y", program="postfix/qmgr")
    journal.say("sentinel", program="postfix/qmgr")
    assert [r.message for r in collect(source, 2, journal)] == ["y", "sentinel"]
    assert source.counters()["entries_skipped"] == 0


# -------------------------------------------------- no journal needed


def test_follows_the_source_protocol(tmp_path: Path) -> None:
    source: Source = JournalSource(tmp_path / "j.json")  # checked by mypy
    assert source.name == "journal"


def test_missing_journalctl_is_retried_not_fatal(tmp_path: Path) -> None:
    source = JournalSource(
        tmp_path / "j.json", journalctl=(str(tmp_path / "no-journalctl"),), backoff_initial=0.01
    )
    source.open()
    try:
        deadline = time.monotonic() + 10
        while source.counters()["spawn_failures"] < 2:
            assert time.monotonic() < deadline, f"no retry: {source.counters()}"
            assert source.poll(0.05) == []
    finally:
        source.close()


@pytest.mark.parametrize("content", ['{"version": 1, "cursor": 5}', '{"vers', "", "\x00\xff"])
def test_a_corrupt_state_is_moved_aside_and_the_journal_followed_from_now(
    tmp_path: Path, content: str
) -> None:
    state = tmp_path / "j.json"
    state.write_text(content)
    source = JournalSource(state, journalctl=("/bin/false",))
    try:
        source.open()
        assert source.counters()["checkpoints_corrupt"] == 1
        assert len(list(tmp_path.glob("j.json.bad-*"))) == 1
        saved = json.loads(state.read_text())
        assert saved["cursor"] is None
        assert isinstance(saved["since_us"], int)
    finally:
        source.close()


def test_commit_rejects_foreign_positions(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="not a journal cursor"):
        JournalSource(tmp_path / "j.json").commit(3)


def _line(**fields: object) -> bytes:
    base: dict[str, object] = {"__CURSOR": "s=1;i=2", "__REALTIME_TIMESTAMP": "1700000000000001"}
    base.update(fields)
    return json.dumps(base).encode() + b"\n"


def test_parse_entry_fields() -> None:
    line = _line(_HOSTNAME="mx1", SYSLOG_IDENTIFIER="postfix/smtp", _PID="12", MESSAGE="hi")
    cursor, record = parse_entry(line, default_accept)
    assert cursor == "s=1;i=2"
    assert record == JournalRecord(1700000000000001, "mx1", "postfix/smtp", 12, "hi", "s=1;i=2")


def test_parse_entry_byte_arrays_and_repeated_fields() -> None:
    line = _line(
        SYSLOG_IDENTIFIER="postfix/smtp",
        MESSAGE=[104, 0xFF, 105],
        _HOSTNAME=["mx1", "mx2"],
        SYSLOG_PID="9",
    )
    _, record = parse_entry(line, default_accept)
    assert isinstance(record, JournalRecord)
    assert (record.message, record.host, record.pid) == ("h\ufffdi", "mx1", 9)


def test_parse_entry_filters_but_keeps_the_cursor() -> None:
    cursor, record = parse_entry(_line(SYSLOG_IDENTIFIER="sshd", MESSAGE="x"), default_accept)
    assert (cursor, record) == ("s=1;i=2", None)


def test_parse_entry_trusts_only_the_given_uids() -> None:
    def entry(**uid: object) -> object:
        line = _line(SYSLOG_IDENTIFIER="postfix/local", MESSAGE="m", _COMM="logger", **uid)
        return parse_entry(line, default_accept, frozenset({0, 107}))[1]

    assert isinstance(entry(_UID="107"), JournalRecord)
    assert isinstance(entry(_UID="0"), JournalRecord)
    assert entry(_UID="65534") == Untrusted(65534, "logger", "postfix/local", "m")
    assert entry() == Untrusted(None, "logger", "postfix/local", "m")
    assert isinstance(parse_entry(_line(SYSLOG_IDENTIFIER="postfix/local"), None)[1], JournalRecord)


def test_parse_entry_missing_fields() -> None:
    _, record = parse_entry(_line(SYSLOG_IDENTIFIER="postfix/smtp"), None)
    assert isinstance(record, JournalRecord)
    assert (record.host, record.pid, record.message) == ("", 0, "")
    with pytest.raises(ValueError, match="__CURSOR"):
        parse_entry(b'{"SYSLOG_IDENTIFIER": "postfix/smtp"}', None)
    with pytest.raises(ValueError, match="Expecting value"):
        parse_entry(b"not json", None)


@pytest.mark.parametrize(
    ("identifier", "wanted"),
    [
        ("postfix/smtp", True),
        ("postfix-out/smtp", True),
        ("postfix/submission/smtpd", True),
        ("postfix/relay/smtp", True),
        ("systemd-journald", True),
        ("rsyslogd", True),
        ("postfix", False),
        ("postfixadmin/cron", False),
        ("sshd", False),
        ("", False),
    ],
)
def test_default_accept(identifier: str, wanted: bool) -> None:
    assert default_accept(identifier) is wanted
