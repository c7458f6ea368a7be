"""Follow a log file as it is written, through every kind of rotation, losing no line.

:class:`FileSource` is in :mod:`watcher.sources.file.source`.
"""

from __future__ import annotations

from watcher.sources.file.source import (
    FINGERPRINT_BYTES,
    Checkpoint,
    FileKey,
    FilePosition,
    FileSource,
)

__all__ = ["FINGERPRINT_BYTES", "Checkpoint", "FileKey", "FilePosition", "FileSource"]
