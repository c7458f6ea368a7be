"""What a real-program test needs before it starts, and bounded waits while it runs.

A missing program skips the test with a reason naming the program and the package
that brings it, except under CI (``CI=true``), where the same thing fails: CI must
never pass by skipping what it was meant to run.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import time
from collections.abc import Callable
from typing import NoReturn, TypeVar

import pytest

T = TypeVar("T")

# Where Debian puts the programs a root shell finds but a bare PATH may not.
_EXTRA_PATH = ("/usr/sbin", "/sbin", "/usr/local/sbin")

# Debian package that brings each program, for the skip/fail reason.
PACKAGES: dict[str, str] = {
    "rsvg-convert": "librsvg2-bin",
    "postfix": "postfix",
    "postconf": "postfix",
    "postalias": "postfix",
    "postmap": "postfix",
    "postqueue": "postfix",
    "postsuper": "postfix",
    "fetchmail": "fetchmail",
    "dovecot": "dovecot-pop3d",
    "redis-server": "redis-server",
    "promtool": "prometheus",
}


def in_ci() -> bool:
    """True when the environment says this is CI (``CI=true``, any case)."""
    return os.environ.get("CI", "").strip().lower() == "true"


def unavailable(reason: str) -> NoReturn:
    """Skip the current test, or fail it under CI."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing requirement fails instead of skipping)")
    pytest.skip(reason)


def find_program(name: str) -> str | None:
    """Absolute path of ``name`` on PATH or in the sbin directories, else None."""
    if os.path.isabs(name):
        return name if os.access(name, os.X_OK) else None
    search = os.pathsep.join([os.environ.get("PATH", os.defpath), *_EXTRA_PATH])
    return shutil.which(name, path=search)


def require_programs(*names: str) -> dict[str, str]:
    """Return ``{name: absolute path}``; skip (fail under CI) naming any missing ones."""
    found = {name: find_program(name) for name in names}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        packages = sorted({PACKAGES.get(name, name) for name in missing})
        unavailable(
            f"needs {', '.join(missing)} (apt-get install {' '.join(packages)})",
        )
    return {name: path for name, path in found.items() if path is not None}


def require_root() -> None:
    """Private Postfix and dovecot instances run as root here, as in CI."""
    if os.geteuid() != 0:
        unavailable("needs root: private Postfix/dovecot instances start as root")


def require_user(name: str) -> pwd.struct_passwd:
    """The passwd entry of ``name``; skip (fail under CI) when there is none."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        unavailable(f"needs the system user {name!r} (created by its Debian package)")


def require_group(name: str) -> grp.struct_group:
    """The group entry of ``name``; skip (fail under CI) when there is none."""
    try:
        return grp.getgrnam(name)
    except KeyError:
        unavailable(f"needs the system group {name!r} (created by its Debian package)")


class WaitTimeout(AssertionError):
    """A bounded wait ran out: names what was awaited and what was last seen."""


def wait_for(
    predicate: Callable[[], T],
    timeout: float,
    what: str,
    *,
    seen: Callable[[], object] | None = None,
    interval: float = 0.05,
) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that.

    Raises WaitTimeout after ``timeout`` seconds, naming ``what`` was awaited and what
    was seen last: ``seen()`` if given, else the predicate's last (falsy) result.
    """
    deadline = time.monotonic() + timeout
    polls = 0
    while True:
        result = predicate()
        polls += 1
        if result:
            return result
        if time.monotonic() >= deadline:
            last = seen() if seen is not None else result
            raise WaitTimeout(
                f"timed out after {timeout:g}s ({polls} polls) waiting for {what}; "
                f"last seen: {last!r}"
            )
        time.sleep(interval)
