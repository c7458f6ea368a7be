"""The wall clock and the host's time zone: the only place either is read.

The pipeline runs on the log's own timestamps; these are for anchoring the
year of classic syslog lines and for things that really happen "now"
(reminders, state files).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def now() -> datetime:
    return datetime.now(UTC)


def zone(name: str = "") -> tzinfo:
    """The named IANA zone; for "" the host's (``$TZ``, else ``/etc/localtime``, else UTC).

    Raises ValueError for an unknown name.
    """
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {name!r}") from exc
    env = os.environ.get("TZ", "").lstrip(":")
    if env:
        try:
            return ZoneInfo(env)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    try:
        with open("/etc/localtime", "rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError):
        return UTC
