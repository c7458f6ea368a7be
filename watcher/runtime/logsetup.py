"""Where log lines go and how they look: a terminal, or the systemd journal.

In a terminal (or a file, or a pipe to something else): ``stormwatch: LEVEL: message``.

Under systemd with ``StandardError=journal`` (the default), systemd sets
``$JOURNAL_STREAM`` to the device and inode (``DEV:INO``) of the stream it
connected to stderr. When the stream we log to is that one, journald is reading
it, so the lines change:

* no timestamp and no program name (journald records both);
* an sd-daemon priority prefix (``<3>`` error, ``<4>`` warning, ``<6>`` info,
  ``<7>`` debug; see ``sd-daemon(3)``) so that ``journalctl -p err`` finds errors
  and ``journalctl -u stormwatch`` shows them as errors;
* one line per event: journald makes an entry of every line, so a traceback or a
  multi-line message is folded onto one line (`` | `` between its lines).

A child process inheriting stderr (journalctl, postsuper) inherits the variable
too, but it is checked against the stream actually used: a redirected stderr is
not mistaken for the journal.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import TextIO

HUMAN_FORMAT = "stormwatch: %(levelname)s: %(message)s"
JOURNAL_FORMAT = "%(levelname)s: %(message)s"
FOLD = " | "

# sd-daemon(3) priorities: syslog's levels.
EMERG, ALERT, CRIT, ERR, WARNING, NOTICE, INFO, DEBUG = range(8)


def syslog_priority(levelno: int) -> int:
    """The syslog priority for a logging level (numbers between levels round down)."""
    if levelno >= logging.CRITICAL:
        return CRIT
    if levelno >= logging.ERROR:
        return ERR
    if levelno >= logging.WARNING:
        return WARNING
    if levelno >= logging.INFO:
        return INFO
    return DEBUG


def fold(text: str) -> str:
    """One line: the lines of ``text`` (stripped, blank ones dropped) joined by `` | ``."""
    lines = [line.strip() for line in text.splitlines()]
    return FOLD.join(line for line in lines if line)


def journal_stream(stream: TextIO, environ: Mapping[str, str] = os.environ) -> bool:
    """True when ``stream`` is the one ``$JOURNAL_STREAM`` names (journald reads it)."""
    value = environ.get("JOURNAL_STREAM", "")
    dev, sep, ino = value.partition(":")
    if not sep or not dev.isdigit() or not ino.isdigit():
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        # no file descriptor (a StringIO, pytest's capture) or a closed stream
        return False
    return (st.st_dev, st.st_ino) == (int(dev), int(ino))


class JournalFormatter(logging.Formatter):
    """``<PRIORITY>LEVEL: message``, one line, traceback folded in, no timestamp."""

    def __init__(self) -> None:
        super().__init__(JOURNAL_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return f"<{syslog_priority(record.levelno)}>{fold(super().format(record))}"


def error_line(text: str, *, journal: bool) -> str:
    """An error written straight to stderr (not through logging), one event per line.

    For the CLI's ``stormwatch: <error>`` lines, so that ``check-config`` failing in
    ``ExecStartPre=`` shows as an error in the journal. Ends with a newline.
    """
    lines = [line for line in text.splitlines() if line.strip()] or [""]
    prefix = f"<{ERR}>" if journal else "stormwatch: "
    return "".join(f"{prefix}{line}\n" for line in lines)


_HANDLER_MARK = "_stormwatch_handler"


def configure(
    verbosity: int,
    *,
    environ: Mapping[str, str] = os.environ,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send the root logger's records to ``stream`` (default: stderr) in the right shape.

    ``verbosity`` 0 shows warnings and errors, 1 adds info, 2 or more debug. Calling
    it again replaces the handler it installed before (other handlers, such as a test
    runner's, are left alone). Returns the handler.
    """
    out = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(out)
    if journal_stream(out, environ):
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter(HUMAN_FORMAT))
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _HANDLER_MARK, False):
            root.removeHandler(old)
            old.close()
    root.addHandler(handler)
    root.setLevel(logging.WARNING - 10 * min(max(verbosity, 0), 2))
    return handler
