"""Small, durable JSON state files: checkpoints, cursors, latches.

Writes are atomic (a temporary file in the same directory, fsync, rename, fsync
of the directory), so a crash leaves either the old or the new content, never a
mix. Files are created ``0o600`` and directories ``0o700``: state can name
mail addresses and hosts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path

from watcher.core.errors import StormwatchError

log = logging.getLogger(__name__)

FILE_MODE = 0o600
DIR_MODE = 0o700


class StateError(StormwatchError):
    """A state file exists but cannot be used (corrupt JSON, wrong shape)."""


def ensure_state_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` and any missing parents with mode ``0o700``; return it.

    Existing directories are left as they are.
    """
    directory = Path(path)
    missing: list[Path] = []
    probe = directory
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for component in reversed(missing):
        with contextlib.suppress(FileExistsError):
            component.mkdir(mode=DIR_MODE)
            log.debug("created state directory %s", component)
    if not directory.is_dir():
        raise StateError(f"{directory}: not a directory")
    return directory


def atomic_write_json(path: str | os.PathLike[str], obj: object) -> None:
    """Replace ``path`` with ``obj`` as JSON, atomically and durably."""
    atomic_write_bytes(path, (json.dumps(obj, sort_keys=True, ensure_ascii=False) + "\n").encode())


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data``: a temporary file in the same directory, fsync,
    rename, fsync of the directory; mode 0o600."""
    target = Path(path)
    directory = ensure_state_dir(target.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as tmp:
            os.fchmod(tmp.fileno(), FILE_MODE)
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_json(path: str | os.PathLike[str]) -> object | None:
    """Return the JSON content of ``path``, or ``None`` if it does not exist.

    Raises :class:`StateError` naming the file if it is not valid UTF-8 JSON.
    """
    target = Path(path)
    try:
        raw = target.read_bytes()
    except FileNotFoundError:
        return None
    try:
        value: object = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateError(
            f"{target}: corrupt state file ({exc}); move it away to start afresh"
        ) from exc
    return value


def move_aside(path: str | os.PathLike[str], now: float) -> Path:
    """Rename an unusable state file to ``<name>.bad-<UTC time>`` (kept for a human to
    look at; a rename needs no free space); returns the new path."""
    target = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    aside = target.with_name(f"{target.name}.bad-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = target.with_name(f"{target.name}.bad-{stamp}-{n}")
    os.replace(target, aside)
    return aside
