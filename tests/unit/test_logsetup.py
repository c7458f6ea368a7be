"""Log lines for a terminal and for the journal, with a real pipe/file stream."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from watcher.runtime import logsetup

LOG = logging.getLogger("watcher.test_logsetup")


@pytest.fixture
def pipe() -> Iterator[tuple[TextIO, TextIO]]:
    """A real pipe: (writer, reader) text streams."""
    r, w = os.pipe()
    writer = os.fdopen(w, "w", encoding="utf-8")
    reader = os.fdopen(r, "r", encoding="utf-8")
    try:
        yield writer, reader
    finally:
        writer.close()
        reader.close()


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    for h in root.handlers:
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    root.setLevel(level)


def journal_env(stream: TextIO) -> dict[str, str]:
    st = os.fstat(stream.fileno())
    return {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}


def written(writer: TextIO, reader: TextIO) -> list[str]:
    writer.flush()
    writer.close()  # EOF for the reader: read() cannot block
    return reader.read().splitlines()


def raise_and_log() -> None:
    try:
        empty: dict[str, int] = {}
        empty["missing"] += 1  # a real exception with a real traceback
    except KeyError:
        LOG.exception("the hold sweep failed; the watcher goes on")


def test_journal_lines_carry_priorities_and_no_timestamp(pipe: tuple[TextIO, TextIO]) -> None:
    writer, reader = pipe
    logsetup.configure(2, environ=journal_env(writer), stream=writer)
    LOG.debug("polled %d lines", 5)
    LOG.info("following %s", "/var/log/mail.log")
    LOG.warning("postfix dropped %s lines", 12)
    LOG.error("the switch is TRIPPED")
    LOG.critical("cannot write the state")
    assert written(writer, reader) == [
        "<7>DEBUG: polled 5 lines",
        "<6>INFO: following /var/log/mail.log",
        "<4>WARNING: postfix dropped 12 lines",
        "<3>ERROR: the switch is TRIPPED",
        "<2>CRITICAL: cannot write the state",
    ]


def test_a_traceback_is_one_journal_line(pipe: tuple[TextIO, TextIO]) -> None:
    writer, reader = pipe
    logsetup.configure(0, environ=journal_env(writer), stream=writer)
    raise_and_log()
    LOG.warning("line one\nline two\n\n  indented three")
    lines = written(writer, reader)
    assert len(lines) == 2, lines
    first = lines[0]
    assert first.startswith("<3>ERROR: the hold sweep failed; the watcher goes on | Traceback")
    assert "| KeyError: 'missing'" in first
    assert "raise_and_log" in first
    assert lines[1] == "<4>WARNING: line one | line two | indented three"


def test_without_journal_stream_the_human_format(pipe: tuple[TextIO, TextIO]) -> None:
    writer, reader = pipe
    logsetup.configure(1, environ={}, stream=writer)
    LOG.debug("not shown at -v")
    LOG.info("following %s", "journal")
    LOG.warning("careful")
    raise_and_log()
    lines = written(writer, reader)
    assert lines[:3] == [
        "stormwatch: INFO: following journal",
        "stormwatch: WARNING: careful",
        "stormwatch: ERROR: the hold sweep failed; the watcher goes on",
    ]
    assert lines[3] == "Traceback (most recent call last):", "a terminal keeps the traceback"
    assert lines[-1] == "KeyError: 'missing'"


def test_journal_stream_of_another_file_is_not_the_journal(
    pipe: tuple[TextIO, TextIO], tmp_path: Path
) -> None:
    """stderr redirected to a file or pipe by hand keeps the human format, even when
    the variable was inherited from a systemd service."""
    writer, reader = pipe
    with (tmp_path / "other").open("w") as other:
        env = journal_env(other)
    logsetup.configure(0, environ=env, stream=writer)
    LOG.warning("careful")
    assert written(writer, reader) == ["stormwatch: WARNING: careful"]


def test_a_real_file_named_by_journal_stream_is_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "stream"
    with path.open("w", encoding="utf-8") as stream:
        logsetup.configure(0, environ=journal_env(stream), stream=stream)
        LOG.error("bad %s", "thing")
        logging.getLogger().handlers[-1].flush()
    assert path.read_text(encoding="utf-8") == "<3>ERROR: bad thing\n"


@pytest.mark.parametrize("value", ["", "12", "a:b", "12:", ":34", "1:2:3"])
def test_malformed_journal_stream_is_not_the_journal(
    value: str, pipe: tuple[TextIO, TextIO]
) -> None:
    writer, _ = pipe
    assert not logsetup.journal_stream(writer, {"JOURNAL_STREAM": value})


def test_a_stream_without_a_descriptor_is_not_the_journal() -> None:
    assert not logsetup.journal_stream(io.StringIO(), {"JOURNAL_STREAM": "1:2"})


def test_verbosity_levels(pipe: tuple[TextIO, TextIO]) -> None:
    writer, _ = pipe
    for verbosity, level in ((0, logging.WARNING), (1, logging.INFO), (2, logging.DEBUG)):
        logsetup.configure(verbosity, environ={}, stream=writer)
        assert logging.getLogger().level == level
    logsetup.configure(5, environ={}, stream=writer)
    assert logging.getLogger().level == logging.DEBUG


def test_configure_again_replaces_only_its_own_handler(pipe: tuple[TextIO, TextIO]) -> None:
    writer, reader = pipe
    root = logging.getLogger()
    before = list(root.handlers)
    first = logsetup.configure(0, environ={}, stream=writer)
    second = logsetup.configure(0, environ=journal_env(writer), stream=writer)
    assert first not in root.handlers
    assert second in root.handlers
    assert [h for h in root.handlers if h is not second] == before
    LOG.warning("once")
    assert written(writer, reader) == ["<4>WARNING: once"], "one handler: no duplicate lines"


def test_error_line() -> None:
    text = "a.toml:3: correlate.max_open: too small\na.toml:9: notify.x: unknown key"
    assert logsetup.error_line(text, journal=True) == (
        "<3>a.toml:3: correlate.max_open: too small\n<3>a.toml:9: notify.x: unknown key\n"
    )
    assert logsetup.error_line("no rule", journal=False) == "stormwatch: no rule\n"


@pytest.mark.parametrize(
    ("levelno", "priority"),
    [
        (logging.DEBUG, 7),
        (5, 7),
        (logging.INFO, 6),
        (25, 6),
        (logging.WARNING, 4),
        (logging.ERROR, 3),
        (logging.CRITICAL, 2),
    ],
)
def test_syslog_priority(levelno: int, priority: int) -> None:
    assert logsetup.syslog_priority(levelno) == priority
