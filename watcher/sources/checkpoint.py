"""A source's checkpoint file: where to resume after a restart.

Every source keeps one small JSON object, ``{"version": 1, ...}``, written
atomically (:func:`watcher.state.files.atomic_write_json`: a crash leaves the
old or the new content, never a mix). :class:`CheckpointFile` is what the file
and journal sources share: reading it back with the version check, writing it,
and :meth:`CheckpointFile.commit`, which skips a position equal to the last one
committed and counts the others, under a lock (the consumer commits from its own
thread). What the fields mean, and their finer shape, is the source's business.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from watcher.state.files import StateError, atomic_write_json, move_aside, read_json

log = logging.getLogger(__name__)

_NOTHING: object = object()  # no position committed yet


class CheckpointFile:
    """One source's checkpoint: ``{"version": version, **fields}`` at ``path``.

    ``kind`` names the file in errors (``"<path>: not a <kind> (<detail>)"``).
    If ``shape`` is given (a description of the expected JSON), the errors of
    :meth:`load` say ``expected <shape>`` rather than what is wrong.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        kind: str,
        version: int = 1,
        shape: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.kind = kind
        self.version = version
        self.shape = shape
        self._lock = threading.Lock()
        self._last: object = _NOTHING  # the last position committed
        self.commits = 0
        self.corrupt = 0  # unusable checkpoints moved aside

    def error(self, detail: str) -> StateError:
        """A :class:`StateError` naming the file: what is wrong with its content."""
        return StateError(f"{self.path}: not a {self.kind} ({detail})")

    def load(self) -> dict[str, object] | None:
        """The saved JSON object (``version`` included), or None if there is no file.

        Raises :class:`StateError` if the file is not JSON, not an object, or of
        another version.
        """
        obj = read_json(self.path)
        if obj is None:
            return None
        expected = f"expected {self.shape}" if self.shape is not None else None
        if not isinstance(obj, dict):
            raise self.error(expected or "not a JSON object")
        if obj.get("version") != self.version:
            raise self.error(expected or f"version {obj.get('version')!r}, expected {self.version}")
        return obj

    def set_aside(self, problem: StateError) -> None:
        """An unusable checkpoint (truncated, empty, binary, a field out of range): move it
        aside for a human, count it, and let the source start as on its first start."""
        self.corrupt += 1
        try:
            aside: object = move_aside(self.path, time.time())
        except OSError as exc:
            aside = f"(could not move it aside: {exc})"
        log.error("%s; moved to %s: starting as on a first start", problem, aside)

    def save(self, fields: Mapping[str, object]) -> None:
        """Write ``{"version": ..., **fields}`` atomically (no commit counted)."""
        atomic_write_json(self.path, {"version": self.version, **fields})

    def save_first(self, fields: Mapping[str, object]) -> None:
        """:meth:`save` the first position; one that cannot be written (a full disk) is
        logged, not fatal: the source follows all the same and commits later."""
        try:
            self.save(fields)
        except OSError as exc:
            log.error("%s: cannot save the first checkpoint (%s): following all the same",
                      self.path, exc.strerror or exc)  # fmt: skip

    def commit(self, position: object, fields: Callable[[], Mapping[str, object]]) -> None:
        """Save ``fields()`` for ``position`` unless it is the position committed last.

        ``fields`` is called only when something is written, under the lock.
        """
        with self._lock:
            if position == self._last:
                return
            self.save(fields())
            self._last = position
            self.commits += 1
