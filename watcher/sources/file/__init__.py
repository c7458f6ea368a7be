"""Follow a log file as it is written, through every kind of rotation, losing no line.

One concept per module:

* :mod:`~watcher.sources.file.source`: :class:`FileSource`, the
  :class:`~watcher.sources.base.Source`: where to start (first time, resume,
  rotated while stopped) and what one poll reads;
* :mod:`~watcher.sources.file.position`: positions (device, inode, offset,
  first bytes) and the checkpoint that persists one (its fingerprint, its JSON);
* :mod:`~watcher.sources.file.tail`: the open file being read, cut into lines
  (long lines cut, UTF-8 decoded);
* :mod:`~watcher.sources.file.rotation`: rename, delete, symlink swap,
  copytruncate; the rotated siblings, and finding the copy;
* :mod:`~watcher.sources.file.wake`: the inotify wake-up, or polling.

The checkpoint file itself (version, atomic write, commit) is
:mod:`watcher.sources.checkpoint`, shared with the journal source.
"""

from __future__ import annotations

from watcher.sources.file.position import FINGERPRINT_BYTES, Checkpoint, FileKey, FilePosition
from watcher.sources.file.source import FileSource

__all__ = ["FINGERPRINT_BYTES", "Checkpoint", "FileKey", "FilePosition", "FileSource"]
