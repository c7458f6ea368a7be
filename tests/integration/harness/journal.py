"""A real journal file for tests: ``systemd-journal-remote`` writes it from
export-format input, ``journalctl --file`` reads it."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

REMOTE_CANDIDATES = (
    "/lib/systemd/systemd-journal-remote",
    "/usr/lib/systemd/systemd-journal-remote",
)
BOOT_ID = "0123456789abcdef0123456789abcdef"


def journal_tools() -> tuple[str, str]:
    remote = next((p for p in REMOTE_CANDIDATES if os.access(p, os.X_OK)), None)
    journalctl = shutil.which("journalctl")
    if remote is None or journalctl is None:
        why = "needs journalctl and systemd-journal-remote (apt-get install systemd-journal-remote)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return remote, journalctl


class Journal:
    """A journal file that tests append entries to."""

    def __init__(self, path: Path, remote: str) -> None:
        self.path = path
        self.remote = remote
        self.clock = time.time_ns() // 1000

    def append(self, *entries: Mapping[str, str | bytes]) -> None:
        data = b"".join(self._export(e) for e in entries)
        done = subprocess.run(
            [self.remote, f"--output={self.path}", "-"],
            input=data,
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, f"journal-remote failed: {done.stderr.decode()}"
        # journal files are written through mmap, which inotify does not see; journald
        # therefore "posts a change" after writing: ftruncate() to the same size, so that
        # followers wake up (journal_file_post_change). journal-remote may exit without
        # doing it for its last entries, so do as journald does.
        os.truncate(self.path, self.path.stat().st_size)

    def entry(
        self, message: str | bytes, program: str = "postfix/smtp", **fields: str
    ) -> dict[str, str | bytes]:
        self.clock = max(self.clock + 1, time.time_ns() // 1000)
        return {
            "__REALTIME_TIMESTAMP": str(self.clock),
            "__MONOTONIC_TIMESTAMP": str(self.clock),
            "_BOOT_ID": BOOT_ID,
            "_HOSTNAME": "mx1",
            "SYSLOG_IDENTIFIER": program,
            "_PID": "4242",
            "_UID": "0",
            "MESSAGE": message,
            **fields,
        }

    def say(self, *messages: str, program: str = "postfix/smtp") -> None:
        self.append(*(self.entry(m, program) for m in messages))

    @staticmethod
    def _export(entry: Mapping[str, str | bytes]) -> bytes:
        out = b""
        for key, value in entry.items():
            raw = value.encode() if isinstance(value, str) else value
            if isinstance(value, bytes) or b"\n" in raw:  # export format's binary field
                out += key.encode() + b"\n" + struct.pack("<Q", len(raw)) + raw + b"\n"
            else:
                out += key.encode() + b"=" + raw + b"\n"
        return out + b"\n"
