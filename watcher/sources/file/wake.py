"""When to look at the file again: an inotify wake-up, or polling.

Between polls the source sleeps on an inotify watch of the file's directory
(watchdog; also the directory of a symlink's target), waking only for events
about the file (or any event while a rotated file is still being finished),
or, in polling mode, wakes every ``poll_interval`` seconds. The source looks at
the file on every poll whatever inotify said, so the caller's poll timeout
bounds the delay should an event be missed (inotify queue overflow). Polling is
chosen automatically when the directory is on a network file system (inotify
does not see remote writes) or when inotify cannot be set up (watch or instance
limits, directory missing at start); ``use_inotify`` forces either mode.

Threads: watchdog's thread runs :class:`WakeHandler`; it and the polling thread
share one :class:`Wakeup`, and nothing else.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Final

import psutil
from watchdog.events import (
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver

log = logging.getLogger(__name__)

# File systems on which inotify does not see writes made by other hosts.
NETWORK_FS_TYPES: Final = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "glusterfs", "afs", "lustre", "gpfs"}
)

_WATCHED_EVENTS: Final[list[type[FileSystemEvent]]] = [
    FileModifiedEvent,
    FileCreatedEvent,
    FileMovedEvent,
    FileDeletedEvent,
]

ObserverFactory = Callable[[], BaseObserver]
MountLister = Callable[[], Sequence[tuple[str, str]]]


def list_mounts() -> list[tuple[str, str]]:
    """(mount point, file system type) of every mounted file system."""
    return [(p.mountpoint, p.fstype) for p in psutil.disk_partitions(all=True)]


class Wakeup:
    """What the polling thread and watchdog's thread share.

    ``event`` is set to wake the polling thread; ``interest`` is the paths whose
    events matter (the file's, and its symlink target's); ``any`` is true while a
    rotated file is being finished, whose new name is not tracked: then every
    event in the watched directories wakes.
    """

    __slots__ = ("any", "event", "interest")

    def __init__(self, path: str) -> None:
        self.event = threading.Event()
        self.interest: frozenset[str] = frozenset({path})
        self.any = False

    def aim(self, path: str) -> None:
        """Be interested in ``path`` and, if it is a symlink, the file it names now."""
        self.interest = frozenset({path, os.path.realpath(path)})


class WakeHandler(FileSystemEventHandler):
    """Runs on watchdog's thread: wakes the polling thread for events that matter."""

    def __init__(self, wakeup: Wakeup) -> None:
        self._wakeup = wakeup

    def on_any_event(self, event: FileSystemEvent) -> None:
        wakeup = self._wakeup
        if wakeup.any:  # draining a rotated file whose new name we do not track
            wakeup.event.set()
            return
        interest = wakeup.interest
        if event.src_path in interest or (event.dest_path and event.dest_path in interest):
            wakeup.event.set()


class DirectoryWatch:
    """The inotify watch of the file's directories, or polling when there is none.

    ``counts`` is the source's counter dict; this adds to ``inotify_failures``.
    """

    def __init__(
        self,
        path: str,
        wakeup: Wakeup,
        *,
        name: str,
        counts: dict[str, int],
        use_inotify: bool | None,
        poll_interval: float,
        observer_factory: ObserverFactory,
        mounts: MountLister,
    ) -> None:
        self.path = path
        self.wakeup = wakeup
        self._name = name
        self._counts = counts
        self._use_inotify = use_inotify
        self._poll_interval = poll_interval
        self._observer_factory = observer_factory
        self._mounts = mounts
        self._observer: BaseObserver | None = None
        self._watched_dirs: set[str] = set()

    @property
    def event_driven(self) -> bool:
        """True while inotify wakes the source; False in polling mode."""
        return self._observer is not None

    def sleep(self, seconds: float) -> None:
        """Wait until woken, or ``seconds`` (at most ``poll_interval`` when polling)."""
        if self._observer is None:
            seconds = min(seconds, self._poll_interval)
        self.wakeup.event.wait(seconds)

    def start(self) -> None:
        """Watch with inotify if it is wanted and works; else poll (and say which)."""
        name = self._name
        want = self._use_inotify
        directory = os.path.dirname(self.path)
        if want is None:
            fstype = _fs_type(directory, self._mounts)
            if fstype in NETWORK_FS_TYPES or fstype.startswith("fuse.sshfs"):
                log.info(
                    "%s: %s is on %s: polling every %gs",
                    name,
                    directory,
                    fstype,
                    self._poll_interval,
                )
                return
            want = True
        if not want:
            log.info("%s: polling every %gs", name, self._poll_interval)
            return
        try:
            observer = self._observer_factory()
            self._observer = observer
            self.refresh()
            observer.start()
        except OSError as exc:
            self._counts["inotify_failures"] += 1
            self.stop()
            if self._use_inotify:
                raise
            log.warning(
                "%s: inotify unavailable (%s): polling every %gs instead",
                name,
                exc,
                self._poll_interval,
            )
            return
        log.info("%s: following with inotify on %s", name, ", ".join(sorted(self._watched_dirs)))

    def follow_new_file(self) -> None:
        """The path names a new file: watch its directories, or fall back to polling."""
        try:
            self.refresh()
        except OSError as exc:
            self._counts["inotify_failures"] += 1
            self.stop()
            log.warning(
                "%s: cannot watch the file's directory any more (%s): polling every %gs",
                self._name,
                exc,
                self._poll_interval,
            )

    def refresh(self) -> None:
        """Watch the file's directory, and its symlink target's directory if elsewhere."""
        self.wakeup.aim(self.path)
        observer = self._observer
        if observer is None:
            return
        real = os.path.realpath(self.path)
        for directory in (os.path.dirname(self.path), os.path.dirname(real)):
            if directory in self._watched_dirs:
                continue
            try:
                observer.schedule(
                    WakeHandler(self.wakeup),
                    directory,
                    recursive=False,
                    event_filter=_WATCHED_EVENTS,
                )
            except OSError as exc:
                if directory == os.path.dirname(self.path) or not os.path.isdir(directory):
                    raise
                log.warning("%s: cannot watch %s: %s", self._name, directory, exc)
                continue
            self._watched_dirs.add(directory)

    def stop(self) -> None:
        observer, self._observer = self._observer, None
        self._watched_dirs.clear()
        if observer is None:
            return
        with contextlib.suppress(RuntimeError):
            observer.stop()
            observer.join(timeout=5)


def _fs_type(directory: str, mounts: MountLister) -> str:
    """The type of the file system holding ``directory`` ("" if unknown)."""
    try:
        real = os.path.realpath(directory)
        best, fstype = "", ""
        for mountpoint, kind in mounts():
            inside = real == mountpoint or real.startswith(mountpoint.rstrip("/") + "/")
            if inside and len(mountpoint) >= len(best):
                best, fstype = mountpoint, kind
        return fstype
    except (OSError, RuntimeError) as exc:
        log.debug("cannot list mounts: %s", exc)
        return ""
