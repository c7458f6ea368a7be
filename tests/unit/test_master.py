"""Which PID is this Postfix's master: the flock on master.pid, as /proc/locks shows it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from watcher.responders.master import NotRunning, check_master, lock_holders


def _proc(tmp_path: Path, pidfile: Path, pid: int) -> Path:
    st = pidfile.stat()
    where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "locks").write_text(
        "1: POSIX  ADVISORY  WRITE 77 00:1a:999 0 EOF\n"
        f"2: FLOCK  ADVISORY  WRITE {pid} {where} 0 EOF\n"
        f"2: -> FLOCK  ADVISORY  WRITE 4242 {where} 0 EOF\n"
    )
    return proc


def test_the_lock_holder_is_the_master(tmp_path: Path) -> None:
    pidfile = tmp_path / "master.pid"
    pidfile.write_text("       123\n")
    proc = _proc(tmp_path, pidfile, 123)
    assert lock_holders(pidfile, proc) == {123}  # the waiter (->) is not a holder
    check_master(123, pidfile, proc)
    with pytest.raises(ValueError, match="held by 123"):
        check_master(555, pidfile, proc)


def test_no_lock_holder_means_not_running(tmp_path: Path) -> None:
    pidfile = tmp_path / "master.pid"
    pidfile.write_text("123\n")
    other = tmp_path / "other"
    other.write_text("")
    proc = _proc(tmp_path, other, 123)
    with pytest.raises(NotRunning):
        check_master(123, pidfile, proc)
