"""Which live source to follow: named on the command line, or found on the host."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Collection
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


def forgeable(spec: str, maillog_file: str) -> str | None:
    """Why lines in this source may not be Postfix's, or None (the journal, whose
    entries are checked for Postfix's uid, and Postfix's own ``maillog_file``)."""
    if not spec.startswith("file:"):
        return None
    path = os.path.abspath(spec[len("file:") :])
    if maillog_file.startswith("/") and os.path.abspath(maillog_file) == path:
        return None
    return (
        f"{path} is written by the system logger: any local user can add Postfix-looking "
        "lines to it (logger -t postfix/local ...), and they count like Postfix's own, so "
        "a local user can trip the switch. Let Postfix write its own log (maillog_file, "
        "Postfix 3.4 and later; written only by postlogd) and follow that, or follow the "
        "journal (entries are checked for Postfix's uid)"
    )


def build_source(
    spec: str,
    state_dir: str | os.PathLike[str],
    *,
    poll: bool = False,
    trusted_uids: Collection[int] | None = None,
) -> Source:
    """``file:PATH`` or ``journal``; checkpoints live under ``state_dir/sources``.

    ``trusted_uids``: the journal's entries from other uids are not read.
    """
    sources_dir = Path(state_dir) / "sources"
    if spec == "journal":
        return JournalSource(sources_dir / "journal.json", trusted_uids=trusted_uids)
    if spec.startswith("file:") and len(spec) > len("file:"):
        path = os.path.abspath(spec[len("file:") :])
        digest = hashlib.sha256(path.encode()).hexdigest()[:16]
        return FileSource(
            path,
            sources_dir / f"file-{digest}.json",
            use_inotify=False if poll else None,
        )
    raise SourceError(f"--source {spec!r}: expected 'file:/path/to/log' or 'journal'")
