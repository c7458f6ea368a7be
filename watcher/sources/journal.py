"""Follow Postfix's entries in the systemd journal through ``journalctl --follow``.

Why journalctl and not a library: it is on every systemd host, it already
copes with journal rotation, vacuuming and files appearing (it watches the
journal directories with inotify), and a crash of it cannot take the watcher
down. A reader thread reads its JSON lines into a bounded queue; when the queue
is full the thread stops reading and journalctl blocks on its pipe: nothing is
dropped, the journal itself is the buffer.

Which entries: ``journalctl`` matches such as ``SYSLOG_IDENTIFIER=postfix/smtp``
are exact, with no wildcards, and Postfix's identifiers are open-ended: every
``master.cf`` service name (``postfix/submission/smtpd``, ``postfix/relay/smtp``)
and every multi-instance ``syslog_name`` (``postfix-out/smtp``) makes a new one.
A fixed list would silently miss some, and being blind without knowing it is
the failure this project exists to avoid. So by default journalctl sends every
entry, cut down to the five fields used (``--output-fields``), and Python keeps
those whose identifier is ``postfix/...`` or ``postfix-*/...``, plus journald's
and rsyslog's own entries (they report messages dropped by rate limiting, which
the pipeline must see). ``identifiers=[...]`` switches to exact journal-side
matches instead, for hosts where the list is known and the volume of other
entries matters.

Whose entries: ``SYSLOG_IDENTIFIER`` is whatever the sender says (``logger -t
postfix/local`` as any user), but ``_UID`` and ``_COMM`` are added by journald
from the sending process and cannot be forged. With ``trusted_uids`` (root and
Postfix's ``mail_owner``, as ``run`` passes them) an entry from any other uid is
not read: it is counted (``untrusted_entries``) and logged (the first, then every
1000th) with the uid and command that sent it.

Where to start: the first time, at the moment :meth:`JournalSource.open` runs
(``--since=@<now>``, persisted at once so that a restart before the first entry
still starts there); afterwards ``--after-cursor`` the committed cursor. If
journalctl exits, it is started again (backoff ``backoff_initial`` doubling to
``backoff_max``) after the last cursor *read*, so nothing is delivered twice
within one run; every restart is counted and logged as a warning. A cursor that
journalctl refuses (journal vacuumed, another machine) is dropped with an error
and the source starts again from now (``cursor_resets``).

Threads: ``open``, ``poll`` and ``close`` belong to one thread; ``commit`` and
``counters`` may be called from another.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import re
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from watcher.sources.base import Item, JournalRecord
from watcher.sources.checkpoint import CheckpointFile
from watcher.state.files import StateError

log = logging.getLogger(__name__)

STATE_VERSION: Final = 1
STATE_SHAPE: Final = '{"version": 1, "cursor": str|null, "since_us": int|null}'
OUTPUT_FIELDS: Final = "_HOSTNAME,SYSLOG_IDENTIFIER,_PID,SYSLOG_PID,_UID,_COMM,MESSAGE"
POSTFIX_IDENTIFIER: Final = re.compile(r"postfix(?:-[^/]*)?/")
# Their entries say when messages were dropped by rate limiting.
RATE_LIMIT_REPORTERS: Final = frozenset({"systemd-journald", "rsyslogd"})

LOG_UNTRUSTED_EVERY: Final = 1000

Popen = Callable[..., "subprocess.Popen[bytes]"]


@dataclass(frozen=True, slots=True)
class Untrusted:
    """A wanted entry sent by a process whose uid is not trusted: not to be read."""

    uid: int | None
    comm: str
    program: str
    message: str

    def describe(self) -> str:
        uid = "no _UID" if self.uid is None else f"uid {self.uid}"
        return (
            f"{self.program!r} entry from {uid} ({self.comm or '?'}), not Postfix's: "
            f"{self.message[:200]!r}"
        )


def default_accept(identifier: str) -> bool:
    """Postfix's identifiers (``postfix/...``, ``postfix-*/...``) and the rate-limit reporters."""
    return POSTFIX_IDENTIFIER.match(identifier) is not None or identifier in RATE_LIMIT_REPORTERS


def _text(value: object) -> str | None:
    """A journal JSON field: a string, a byte array (list of ints), or a list of those."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        if all(isinstance(b, int) for b in value):
            try:
                return bytes(value).decode("utf-8", errors="replace")
            except ValueError:
                return None
        return _text(value[0])  # the field appeared more than once: the first value
    return None


def _int(value: object) -> int | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def parse_entry(
    line: bytes,
    accept: Callable[[str], bool] | None,
    trusted_uids: Collection[int] | None = None,
) -> tuple[str | None, JournalRecord | Untrusted | None]:
    """One line of ``journalctl --output=json``: (cursor, record if wanted), or
    :class:`Untrusted` for a wanted entry whose ``_UID`` is not in ``trusted_uids``.

    Raises ``ValueError`` if the line is not a journal JSON object.
    """
    obj = json.loads(line)
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    cursor = _text(obj.get("__CURSOR"))
    program = _text(obj.get("SYSLOG_IDENTIFIER")) or ""
    if accept is not None and not accept(program):
        return cursor, None
    time_us = _int(obj.get("__REALTIME_TIMESTAMP"))
    if cursor is None or time_us is None:
        raise ValueError("no __CURSOR or __REALTIME_TIMESTAMP")
    message = _text(obj.get("MESSAGE")) or ""
    if trusted_uids is not None:
        uid = _int(obj.get("_UID"))
        if uid is None or uid not in trusted_uids:
            return cursor, Untrusted(uid, _text(obj.get("_COMM")) or "", program, message)
    pid = _int(obj.get("_PID"))
    if pid is None:
        pid = _int(obj.get("SYSLOG_PID")) or 0
    record = JournalRecord(
        time=time_us,
        host=_text(obj.get("_HOSTNAME")) or "",
        program=program,
        pid=pid,
        message=message,
        position=cursor,
    )
    return cursor, record


class JournalSource:
    """Postfix's journal entries, from a supervised ``journalctl --follow``."""

    name = "journal"

    def __init__(
        self,
        state_path: str | Path,
        *,
        journalctl: Sequence[str] = ("journalctl",),
        extra_args: Sequence[str] = (),
        identifiers: Sequence[str] | None = None,
        trusted_uids: Collection[int] | None = None,
        queue_size: int = 10000,
        max_batch: int = 5000,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        stop_timeout: float = 5.0,
        popen: Popen = subprocess.Popen,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if identifiers is not None:
            bad = [i for i in identifiers if not i or "\n" in i]
            if bad or not identifiers:
                raise ValueError(f"identifiers must be non-empty strings, got {identifiers!r}")
        self._checkpoint = CheckpointFile(
            state_path,
            kind="journal checkpoint",
            version=STATE_VERSION,
            shape=STATE_SHAPE,
        )
        self.state_path = self._checkpoint.path
        self._journalctl = tuple(journalctl)
        self._extra = tuple(extra_args)
        self._identifiers = tuple(identifiers) if identifiers is not None else None
        self._accept = None if identifiers is not None else default_accept
        self._trusted = frozenset(trusted_uids) if trusted_uids is not None else None
        self._queue: queue.Queue[JournalRecord] = queue.Queue(maxsize=queue_size)
        self._max_batch = max_batch
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._stop_timeout = stop_timeout
        self._popen = popen
        self._wall_clock = wall_clock

        self._read_cursor: str | None = None  # last entry read from journalctl
        self._since_us: int | None = None  # start point while no cursor is known
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._proc_lock = threading.Lock()
        self._opened = False
        self._closed = False
        self._counts: dict[str, int] = dict.fromkeys(
            (
                "lines",
                "entries_skipped",
                "untrusted_entries",
                "bad_lines",
                "restarts",
                "spawn_failures",
                "cursor_resets",
                "reader_errors",
            ),
            0,
        )

    # ----------------------------------------------------------------- protocol

    def open(self) -> None:
        if self._opened:
            raise RuntimeError("journal: already opened")
        self._opened = True
        try:
            cursor, since = self._load_state()
        except StateError as exc:
            self._checkpoint.set_aside(exc)
            cursor, since = None, None
        if cursor is None and since is None:
            since = int(self._wall_clock() * 1_000_000)
            self._checkpoint.save_first(_state(None, since))
            log.info("journal: first start, following entries from now on")
        self._read_cursor, self._since_us = cursor, since
        self._thread = threading.Thread(target=self._supervise, name="journal-reader", daemon=True)
        self._thread.start()

    def poll(self, timeout: float) -> list[Item]:
        if not self._opened or self._closed:
            raise RuntimeError("journal: poll() needs an open source")
        items: list[Item] = []
        try:
            items.append(
                self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            )
        except queue.Empty:
            self._check_reader()
            return items
        while len(items) < self._max_batch:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return items

    def commit(self, position: object) -> None:
        if not isinstance(position, str) or not position:
            raise TypeError(f"journal: not a journal cursor: {position!r}")
        self._checkpoint.commit(position, lambda: _state(position, None))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._terminate()
        if self._thread is not None:
            self._thread.join(timeout=self._stop_timeout + 1)
            if self._thread.is_alive():
                log.error("journal: reader thread did not stop")

    def counters(self) -> dict[str, int]:
        counts = dict(self._counts)
        counts["commits"] = self._checkpoint.commits
        counts["checkpoints_corrupt"] = self._checkpoint.corrupt
        counts["queue_depth"] = self._queue.qsize()
        return counts

    @property
    def process_id(self) -> int | None:
        """The pid of the running journalctl (for status output and tests)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    # ------------------------------------------------------------------- state

    def _load_state(self) -> tuple[str | None, int | None]:
        obj = self._checkpoint.load()
        if obj is None:
            return None, None
        cursor = obj.get("cursor")
        since = obj.get("since_us")
        if not (cursor is None or (isinstance(cursor, str) and cursor)) or not (
            since is None or (isinstance(since, int) and not isinstance(since, bool))
        ):
            raise self._checkpoint.error(f"expected {STATE_SHAPE}")
        return cursor, since

    # ------------------------------------------------------------------ reader

    def _argv(self) -> list[str]:
        argv = [
            *self._journalctl,
            "--follow",
            "--output=json",
            f"--output-fields={OUTPUT_FIELDS}",
            "--all",
            "--no-pager",
            *self._extra,
        ]
        if self._read_cursor is not None:
            argv.append(f"--after-cursor={self._read_cursor}")
        elif self._since_us is not None:
            seconds, micros = divmod(self._since_us, 1_000_000)
            argv.append(f"--since=@{seconds}.{micros:06d}")
        else:
            argv.append("--lines=0")
        if self._identifiers is not None:
            argv.extend(f"SYSLOG_IDENTIFIER={i}" for i in self._identifiers)
        return argv

    def _supervise(self) -> None:
        """The reader thread: run journalctl, read it, and start it again when it exits."""
        backoff = self._backoff_initial
        while not self._stop.is_set():
            try:
                read, returncode, errors = self._run_once()
            except Exception:
                self._counts["reader_errors"] += 1
                log.exception("journal: reader failed")
                read, returncode, errors = 0, None, ""
            if self._stop.is_set():
                break
            if read:
                backoff = self._backoff_initial
            if returncode is not None:
                self._counts["restarts"] += 1
                cursor_refused = not read and returncode != 0 and "cursor" in errors.lower()
                if cursor_refused and self._read_cursor is not None:
                    self._counts["cursor_resets"] += 1
                    log.error(
                        "journal: journalctl refused cursor %s (%s): starting from now; "
                        "entries since the last checkpoint may have been missed",
                        self._read_cursor,
                        errors.strip(),
                    )
                    self._read_cursor = None
                    self._since_us = int(self._wall_clock() * 1_000_000)
                log.warning(
                    "journal: journalctl exited with status %s after %d entries%s; "
                    "restarting in %.1fs after cursor %s",
                    returncode,
                    read,
                    f" ({errors.strip()})" if errors.strip() else "",
                    backoff,
                    self._read_cursor,
                )
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, self._backoff_max)

    def _run_once(self) -> tuple[int, int | None, str]:
        """Run one journalctl to its end: (entries read, exit status, its stderr's tail)."""
        argv = self._argv()
        log.debug("journal: running %s", argv)
        try:
            proc = self._popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                close_fds=True,
            )
        except OSError as exc:
            self._counts["spawn_failures"] += 1
            log.error("journal: cannot run %s: %s", argv[0], exc)
            return 0, None, ""
        with self._proc_lock:
            self._proc = proc
        if self._stop.is_set():  # close() ran while we were starting it
            self._terminate()
        errors: deque[str] = deque(maxlen=5)
        if proc.stdout is None or proc.stderr is None:
            raise RuntimeError("journal: journalctl was started without pipes")
        drain = threading.Thread(
            target=_drain, args=(proc.stderr, errors), name="journal-stderr", daemon=True
        )
        drain.start()
        read = 0
        try:
            read = self._pump(proc.stdout)
        finally:
            if self._stop.is_set():
                self._terminate()
            try:
                returncode = proc.wait(timeout=self._stop_timeout)
            except subprocess.TimeoutExpired:
                self._terminate()
                returncode = proc.wait()
            drain.join(timeout=self._stop_timeout)
            proc.stdout.close()
            proc.stderr.close()
            with self._proc_lock:
                self._proc = None
        return read, returncode, " / ".join(errors)

    def _pump(self, stdout: IO[bytes]) -> int:
        read = 0
        for line in stdout:
            if self._stop.is_set():
                break
            try:
                cursor, record = parse_entry(line, self._accept, self._trusted)
            except ValueError as exc:  # json.JSONDecodeError is a ValueError
                self._counts["bad_lines"] += 1
                log.warning("journal: unreadable journalctl output %.200r: %s", line, exc)
                continue
            read += 1
            if record is None:
                self._counts["entries_skipped"] += 1
            elif isinstance(record, Untrusted):
                self._untrusted(record)
            elif not self._put(record):
                break
            else:
                self._counts["lines"] += 1
            if cursor is not None:
                self._read_cursor = cursor
        return read

    def _untrusted(self, entry: Untrusted) -> None:
        self._counts["untrusted_entries"] += 1
        n = self._counts["untrusted_entries"]
        if n == 1 or n % LOG_UNTRUSTED_EVERY == 0:
            log.warning(
                "journal: ignored %s (%d so far; trusted uids: %s)",
                entry.describe(), n, ", ".join(map(str, sorted(self._trusted or ()))),
            )  # fmt: skip

    def _put(self, record: JournalRecord) -> bool:
        """Queue a record, waiting while the pipeline is behind; False if stopping."""
        while not self._stop.is_set():
            try:
                self._queue.put(record, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def _terminate(self) -> None:
        with self._proc_lock:
            proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout=self._stop_timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    def _check_reader(self) -> None:
        thread = self._thread
        if thread is not None and not thread.is_alive() and not self._closed:
            raise RuntimeError("journal: the reader thread has stopped")


def _state(cursor: str | None, since_us: int | None) -> dict[str, object]:
    """The checkpoint's fields (besides ``version``): a cursor, or a start time while none."""
    return {"cursor": cursor, "since_us": since_us}


def _drain(stream: IO[bytes], tail: deque[str]) -> None:
    """Keep journalctl's stderr flowing, remembering its last lines.

    journalctl says little there, and what it says matters (a cursor it cannot
    seek to, journals it may not read: the watcher would be partly blind), so
    every line is logged as a warning.
    """
    for raw in stream:
        line = raw.decode("utf-8", errors="replace").rstrip()
        if line:
            tail.append(line)
            log.warning("journal: journalctl says: %s", line)
