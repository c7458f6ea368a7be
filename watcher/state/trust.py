"""Files a root process may trust: only what root (or the running user) alone could write.

stormwatch runs as root and acts on what its settings, rules and state files
say: a rules file any user can edit switches the rules off; a settings file any
user can edit chooses the command root runs; a latch.json another user planted
makes ``rearm`` write chosen text into main.cf. So, when running as root:

* a settings or rules file, and every directory above it, must be owned by
  root (or the running user) and not writable by group or others (a
  group-writable one is accepted when its group is root's); a sticky directory
  such as ``/tmp`` is accepted above a file or directory root owns (others cannot
  replace it), but never as the rules directory itself;
* the state directory must be owned by the running user and writable by it
  alone;
* a state file must be owned by the running user and writable by it alone.

Not as root, nothing is checked: the user can change their own files anyway.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from watcher.core.errors import ConfigError
from watcher.state.files import StateError


class UntrustedFile(ConfigError):
    """A settings or rules file that someone other than root could change."""


class UntrustedState(StateError):
    """A state directory or file that someone other than the running user could change."""


def _mode(st: os.stat_result) -> str:
    perms = f"{stat.filemode(st.st_mode)} {st.st_mode & 0o7777:04o}"
    return f"{perms}, uid {st.st_uid}, gid {st.st_gid}"


def _writable_by_others(st: os.stat_result, trusted_uids: set[int]) -> str:
    """Why ``st`` may be changed by someone untrusted ("" if it may not)."""
    if st.st_uid not in trusted_uids:
        return f"owned by uid {st.st_uid}"
    if st.st_mode & stat.S_IWOTH:
        return "writable by others"
    if st.st_mode & stat.S_IWGRP and st.st_gid != 0:
        return f"writable by group {st.st_gid}"
    return ""


def _owner(path: Path) -> int:
    try:
        return os.stat(path).st_uid
    except OSError:
        return -1


def check_config_path(path: str | os.PathLike[str], what: str, *, euid: int | None = None) -> None:
    """UntrustedFile naming ``path`` (or the directory above it) and its mode, when run
    as root and someone other than root could change it (a rules directory whose files
    others could add to or replace is refused the same way)."""
    uid = os.geteuid() if euid is None else euid
    if uid != 0:
        return
    trusted = {0, uid}
    target = Path(os.path.abspath(path))
    chain = [target, *target.parents]
    for i, p in enumerate(chain):
        try:
            st = os.stat(p)
        except FileNotFoundError:
            continue  # a missing file is reported by whoever reads it
        why = _writable_by_others(st, trusted)
        if not why:
            continue
        # /tmp (1777) above a directory or file root owns: others cannot replace it
        sticky_above_ours = (
            i > 0
            and st.st_mode & stat.S_ISVTX
            and st.st_uid in trusted
            and _owner(chain[i - 1]) in trusted
        )
        if sticky_above_ours:
            continue
        place = what if i == 0 else f"the directory {p} above {what}"
        raise UntrustedFile(
            f"{target}: refusing {what}: {place} is {why} ({_mode(st)}); as root, stormwatch "
            "reads only files that root alone can change (chown root and chmod go-w)"
        )


def check_state_dir(path: str | os.PathLike[str], *, euid: int | None = None) -> None:
    """UntrustedState unless ``path`` is owned by the running user and private to it."""
    uid = os.geteuid() if euid is None else euid
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return  # created 0700 on first use
    if st.st_uid != uid or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UntrustedState(
            f"{path}: refusing the state directory: it must be owned by uid {uid} and "
            f"writable by it alone ({_mode(st)}); a file planted there would steer the "
            "kill switch (chown it and chmod 0700)"
        )


def untrusted_state_file(path: str | os.PathLike[str], *, euid: int | None = None) -> str:
    """Why the state file ``path`` cannot be trusted ("" when it can, or is absent)."""
    uid = os.geteuid() if euid is None else euid
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return ""
    if not stat.S_ISREG(st.st_mode):
        return f"not a regular file ({_mode(st)})"
    if st.st_uid != uid:
        return f"owned by uid {st.st_uid}, not {uid} ({_mode(st)})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"writable by others ({_mode(st)})"
    return ""
