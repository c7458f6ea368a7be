"""Which live source to follow: named on the command line, or found on the host."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from watcher.core.errors import ConfigError
from watcher.sources.base import Source
from watcher.sources.file import FileSource
from watcher.sources.journal import JournalSource

log = logging.getLogger(__name__)

CANDIDATES = ("/var/log/mail.log", "/var/log/maillog")


class SourceError(ConfigError):
    """A source specification is wrong."""


def default_source(
    maillog_file: Callable[[], str],
    *,
    exists: Callable[[str], bool] = os.path.exists,
) -> tuple[str, str]:
    """``(spec, why)``: the first of /var/log/mail.log, /var/log/maillog, Postfix's own
    ``maillog_file`` (``maillog_file()`` asks Postfix; "" if it has none), else the journal."""
    for path in CANDIDATES:
        if exists(path):
            return f"file:{path}", f"{path} exists"
    maillog = maillog_file()
    if maillog.startswith("/"):
        return f"file:{maillog}", f"Postfix logs to {maillog} (maillog_file)"
    return "journal", "no mail log file found; Postfix logs to the journal"


def build_source(spec: str, state_dir: str | os.PathLike[str], *, poll: bool = False) -> Source:
    """``file:PATH`` or ``journal``; checkpoints live under ``state_dir/sources``."""
    sources_dir = Path(state_dir) / "sources"
    if spec == "journal":
        return JournalSource(sources_dir / "journal.json")
    if spec.startswith("file:") and len(spec) > len("file:"):
        path = os.path.abspath(spec[len("file:") :])
        digest = hashlib.sha256(path.encode()).hexdigest()[:16]
        return FileSource(
            path,
            sources_dir / f"file-{digest}.json",
            use_inotify=False if poll else None,
        )
    raise SourceError(f"--source {spec!r}: expected 'file:/path/to/log' or 'journal'")
