"""Is the PID in ``master.pid`` this instance's Postfix master? Asked before a SIGHUP.

``master.pid`` outlives the master: after Postfix stops (or crashes) the file
stays, and its PID may be reused by any process, which a SIGHUP would hit.
The running master holds an exclusive ``flock`` on that file for its whole
life (Postfix's ``master_lock``), so the lock, as Linux shows it in
``/proc/locks``, names the live master of *this* queue directory, and nobody
else. Where ``/proc/locks`` cannot be read, the PID's program must at least be
called ``master``.
"""

from __future__ import annotations

import os
from pathlib import Path


class NotRunning(Exception):
    """No process holds the lock on ``master.pid``: this Postfix is not running."""


def lock_holders(path: Path, proc: Path = Path("/proc")) -> set[int] | None:
    """The PIDs holding a lock on ``path`` (from ``proc/locks``); None if unknown."""
    try:
        st = path.stat()
        text = (proc / "locks").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    want = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    holders: set[int] = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[1] == "->":  # "->": a process waiting for the lock
            continue
        try:
            major, minor, inode = fields[5].split(":")
            where = (int(major, 16), int(minor, 16), int(inode))
            pid = int(fields[4])
        except ValueError:
            continue
        if where == want:
            holders.add(pid)
    return holders


def check_master(pid: int, pidfile: Path, proc: Path = Path("/proc")) -> None:
    """Return if ``pid`` is the master that locks ``pidfile``. NotRunning when nobody
    holds the lock; ValueError (with the reason) when the PID is some other process."""
    holders = lock_holders(pidfile, proc)
    if holders is not None:
        if not holders:
            raise NotRunning(f"no process holds the lock on {pidfile}")
        if pid not in holders:
            raise ValueError(
                f"{pidfile} names PID {pid}, but the lock on it is held by "
                + ", ".join(str(h) for h in sorted(holders))
            )
        return
    try:
        exe = os.readlink(proc / str(pid) / "exe")
    except FileNotFoundError as exc:
        raise NotRunning(f"{pidfile} names PID {pid}, which does not exist") from exc
    except OSError:
        return  # not ours to look at: trust the file, as Postfix's own scripts do
    if Path(exe.removesuffix(" (deleted)")).name != "master":
        raise ValueError(f"{pidfile} names PID {pid}, which runs {exe}, not Postfix's master")
