"""Times as stormwatch keeps and writes them. Pure: no clock is read here.

Inside, a time is an ``int``: microseconds since the Unix epoch, UTC (log
times from the lines themselves, wall times converted once with
:func:`wall_us`). Outside, it is ISO 8601 with an offset. The conversions are
exact (no float on the way), so a time written and read back is the same.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def micros(dt: datetime) -> int:
    """An aware datetime -> microseconds since the epoch."""
    delta = dt - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def wall_us(seconds: float) -> int:
    """A wall-clock time in seconds (``time.time()``) -> microseconds."""
    return round(seconds * 1_000_000)


def to_datetime(t_us: int, tz: tzinfo = UTC) -> datetime:
    return (EPOCH + timedelta(microseconds=t_us)).astimezone(tz)


def iso(t_us: int, tz: tzinfo = UTC, timespec: str = "auto") -> str:
    """Microseconds -> ISO 8601 in ``tz`` (``timespec`` as for ``datetime.isoformat``)."""
    return to_datetime(t_us, tz).isoformat(timespec=timespec)


def iso_or_none(t_us: int | None, tz: tzinfo = UTC) -> str | None:
    return None if t_us is None else iso(t_us, tz)


def from_iso(value: str) -> int:
    """ISO 8601 with an offset -> microseconds. ValueError if it has no offset."""
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        raise ValueError(f"{value!r}: no UTC offset")
    return (dt - EPOCH) // _US
