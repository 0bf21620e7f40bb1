"""Times at the edge: everything a user may pass becomes int64 microseconds, once.

The one time parser of the CLI, the SDK and the settings. Accepted (:data:`ACCEPTED` says it in
error messages):

- ``datetime`` (naive means UTC), ``date``, ``pandas.Timestamp``, ``numpy.datetime64``;
- ISO-8601 text, tz-aware or not (``2024-01-31``, ``2024-01-31T12:00:00Z``,
  ``2024-01-31 12:00:00.5+02:00``; no offset means UTC);
- ``YYYYMMDD`` text as a date (``20240131``);
- integers of any type (``int``, ``numpy.int32``/``int64``/``uint64``, pandas' scalars) with an
  explicit ``unit`` of ``s``, ``ms``, ``us`` or ``ns``. A unit is never guessed from a number's
  size: milliseconds before 1973 look like seconds, so the guess loses data quietly.

Anything else — ``01/02/2024`` (January or February?), ``yesterday``, floats — is refused with
the accepted forms named. Intervals accept seconds (int), ``timedelta``, pandas offsets and
strings like ``"1m"``, ``"5min"``, ``"1h"``, ``"1d"``.
"""

from __future__ import annotations

import datetime as dt
import numbers
import re
from typing import Any

from seamfill.core.errors import InvalidArgument, InvalidRange
from seamfill.core.types import TimeRange

__all__ = ["ACCEPTED", "UNITS", "interval_to_us", "to_range", "to_us", "us_to_iso"]

ACCEPTED = (
    "an ISO-8601 time like 2024-01-31 or 2024-01-31T12:00:00Z (an offset like +02:00 is "
    "honoured), a YYYYMMDD date like 20240131, a datetime/pandas Timestamp, or an integer "
    "with its unit (s, ms, us or ns)"
)
"""The accepted forms, as error messages name them."""

UNITS = ("s", "ms", "us", "ns")
_UNIT_US = {"s": 1_000_000, "ms": 1_000, "us": 1}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_INTERVAL_UNITS_US = {
    "us": 1,
    "ms": 1_000,
    "s": 1_000_000,
    "sec": 1_000_000,
    "m": 60_000_000,
    "min": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
    "w": 7 * 86_400_000_000,
}
_INTERVAL_RE = re.compile(r"^\s*(\d+)\s*([a-zA-Z]+)\s*$")
_ISO_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?)?"
    r"(?:Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)
_YYYYMMDD_RE = re.compile(r"^\d{8}$")
_SHOWN = 40  # characters of a bad value quoted back


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


def _int_to_us(value: int, unit: str | None, field: str) -> int:
    if unit is None:
        raise InvalidArgument(
            f"{field} = {value} is an integer without a unit: pass unit='s', 'ms', 'us' or "
            f"'ns' (a unit is never guessed), or give {ACCEPTED}"
        )
    if unit == "ns":
        return value // 1_000
    if unit not in _UNIT_US:
        raise InvalidArgument(f"unit {unit!r} for {field} is not one of {', '.join(UNITS)}")
    return value * _UNIT_US[unit]


def _datetime_to_us(value: dt.datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def to_us(value: Any, field: str = "time", *, unit: str | None = None) -> int:
    """``value`` as int microseconds since the epoch; ``field`` names it in errors.

    ``unit`` is the unit of an integer ``value`` (required for integers, ignored otherwise).
    """
    if isinstance(value, bool):
        raise InvalidArgument(f"{field} is a bool ({value}): give {ACCEPTED}")
    if isinstance(value, numbers.Integral):  # int, numpy and pandas integer scalars
        return _int_to_us(int(value), unit, field)
    # pandas.Timestamp is a datetime subclass with nanoseconds; use its own value to keep them.
    as_pd = _pandas_timestamp(value, field)
    if as_pd is not None:
        return as_pd
    if isinstance(value, dt.datetime):
        return _datetime_to_us(value)
    if isinstance(value, dt.date):
        return _datetime_to_us(dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC))
    if isinstance(value, str):
        return _parse_text(value, field)
    raise InvalidArgument(f"{field} has type {type(value).__name__}: give {ACCEPTED}")


def _pandas_timestamp(value: Any, field: str) -> int | None:
    import pandas as pd

    if isinstance(value, pd.Timestamp):
        if value is pd.NaT:
            raise InvalidArgument(f"{field} is NaT: give a real time")
        ts = value if value.tzinfo is not None else value.tz_localize("UTC")
        return int(ts.value) // 1_000
    if value is pd.NaT:
        raise InvalidArgument(f"{field} is NaT: give a real time")
    if type(value).__name__ == "datetime64":
        if pd.isna(value):
            raise InvalidArgument(f"{field} is NaT: give a real time")
        return int(pd.Timestamp(value).value) // 1_000
    return None


def _parse_text(text: str, field: str) -> int:
    import pandas as pd

    stripped = text.strip()
    if _YYYYMMDD_RE.match(stripped):
        try:
            day = dt.datetime.strptime(stripped, "%Y%m%d").replace(tzinfo=dt.UTC)
        except ValueError as e:
            raise InvalidArgument(
                f"{field} = {_shown(text)} is not a real date ({e}): give {ACCEPTED}"
            ) from e
        return _datetime_to_us(day)
    if not _ISO_RE.match(stripped):
        raise InvalidArgument(f"{field} = {_shown(text)} is not a time: give {ACCEPTED}")
    try:
        ts = pd.Timestamp(stripped)
    except (ValueError, TypeError) as e:
        raise InvalidArgument(
            f"{field} = {_shown(text)} is not a real time ({e}): give {ACCEPTED}"
        ) from e
    return _pandas_timestamp(ts, field) or 0


def interval_to_us(value: Any, field: str = "interval") -> int:
    """A bar interval as microseconds: int seconds, timedelta, pandas offset or ``"1m"``."""
    if isinstance(value, bool):
        raise InvalidArgument(f"{field} is a bool: give seconds or a string like '1m'")
    if isinstance(value, int):
        us = value * 1_000_000
    elif isinstance(value, dt.timedelta):
        us = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    elif isinstance(value, str):
        us = _parse_interval(value, field)
    elif hasattr(value, "nanos"):
        us = int(value.nanos) // 1_000
    else:
        raise InvalidArgument(
            f"{field} has type {type(value).__name__}: give seconds (int), a "
            "timedelta or a string like '1m', '1h'"
        )
    if us <= 0:
        raise InvalidArgument(f"{field} = {value!r} is not positive: give a bar length")
    return us


def _parse_interval(text: str, field: str) -> int:
    m = _INTERVAL_RE.match(text)
    if not m:
        raise InvalidArgument(
            f"{field} = {text!r} is not an interval: write it like '1m', '5min', '1h' or '1d'"
        )
    count, unit = int(m.group(1)), m.group(2).lower()
    unit = {"t": "min", "mins": "min", "hr": "h", "hour": "h", "day": "d"}.get(unit, unit)
    if unit not in _INTERVAL_UNITS_US:
        raise InvalidArgument(
            f"{field} = {text!r} has an unknown unit {m.group(2)!r}: use one "
            f"of {', '.join(_INTERVAL_UNITS_US)}"
        )
    return count * _INTERVAL_UNITS_US[unit]


def to_range(start: Any, end: Any, *, unit: str | None = None) -> TimeRange:
    """A validated half-open range from two user times."""
    s, e = to_us(start, "start", unit=unit), to_us(end, "end", unit=unit)
    if e <= s:
        raise InvalidRange(
            f"end ({end!r}) is not after start ({start!r}): ranges are "
            "half-open [start, end); give an end after the start"
        )
    return TimeRange(s, e).validate()


def us_to_iso(us: int) -> str:
    """``2024-01-31T12:00:00.000000Z``: the form QuestDB parses as an exact timestamp literal."""
    seconds, micros = divmod(us, 1_000_000)
    t = _EPOCH + dt.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{micros:06d}Z"


def us_to_text(us: int) -> str:
    """``2024-01-31T12:00:00Z`` for people (microseconds shown only when there are any)."""
    seconds, micros = divmod(us, 1_000_000)
    t = _EPOCH + dt.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{micros:06d}Z" if micros else "Z")


def duration_text(us: float) -> str:
    """A short duration for people: ``950us``, ``12ms``, ``3.5s``, ``4m10s``, ``2h05m``."""
    if us < 1_000:
        return f"{max(0, int(us))}us"
    if us < 1_000_000:
        return f"{int(us // 1_000)}ms"
    s = us / 1_000_000
    if s < 60:
        return f"{s:.1f}s"
    m, sec = divmod(int(s), 60)
    if m < 60:
        return f"{m}m{sec:02d}s" if sec else f"{m}m"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h{m:02d}m" if m else f"{h}h"
    d, h = divmod(h, 24)
    return f"{d}d{h:02d}h" if h else f"{d}d"
