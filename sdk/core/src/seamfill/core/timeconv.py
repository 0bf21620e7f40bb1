"""Times at the edge: everything a user may pass becomes int64 microseconds, once.

Accepted: ``datetime`` (naive means UTC), ``pandas.Timestamp``, ``numpy.datetime64``, ISO-8601
strings, and epoch integers. An integer's unit is read from its size, because strategy code
written for other history providers passes seconds, milliseconds or nanoseconds:

=====================  ============  =========================
``abs(value)`` below   unit          covers
=====================  ============  =========================
``1e11``               seconds       up to year 5138
``1e14``               milliseconds  1973 .. 5138
``1e17``               microseconds  1973 .. 5138
otherwise              nanoseconds
=====================  ============  =========================

Pass ``unit=`` to say it outright. Intervals accept seconds (int), ``timedelta``, pandas
offsets and strings like ``"1m"``, ``"5min"``, ``"1h"``, ``"1d"``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from seamfill.core.errors import InvalidArgument, InvalidRange
from seamfill.core.types import TimeRange

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


def _int_to_us(value: int, unit: str | None, field: str) -> int:
    if unit == "ns":
        return value // 1_000
    if unit is not None:
        if unit not in _UNIT_US:
            raise InvalidArgument(f"unit {unit!r} for {field} is not one of s, ms, us, ns")
        return value * _UNIT_US[unit]
    size = abs(value)
    if size < 10**11:
        return value * 1_000_000
    if size < 10**14:
        return value * 1_000
    if size < 10**17:
        return value
    return value // 1_000


def _datetime_to_us(value: dt.datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def to_us(value: Any, field: str = "time", *, unit: str | None = None) -> int:
    """``value`` as int microseconds since the epoch; ``field`` names it in errors."""
    if isinstance(value, bool):
        raise InvalidArgument(f"{field} is a bool ({value}): give a datetime, ISO string or int")
    if isinstance(value, int):
        return _int_to_us(value, unit, field)
    # pandas.Timestamp is a datetime subclass with nanoseconds; use its own value to keep them.
    as_pd = _pandas_timestamp(value)
    if as_pd is not None:
        return as_pd
    if isinstance(value, dt.datetime):
        return _datetime_to_us(value)
    if isinstance(value, dt.date):
        return _datetime_to_us(dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC))
    if isinstance(value, str):
        return _parse_iso(value, field)
    if isinstance(value, float):
        raise InvalidArgument(
            f"{field} is a float ({value}): give an int (epoch seconds, ms, "
            "us or ns), a datetime or an ISO string"
        )
    raise InvalidArgument(
        f"{field} has type {type(value).__name__}: give a datetime, pandas "
        "Timestamp, ISO-8601 string or epoch int"
    )


def _pandas_timestamp(value: Any) -> int | None:
    import pandas as pd

    if isinstance(value, pd.Timestamp):
        if value is pd.NaT:
            raise InvalidArgument("time is NaT: give a real time")
        ts = value if value.tzinfo is not None else value.tz_localize("UTC")
        return int(ts.value) // 1_000
    type_name = type(value).__name__
    if type_name == "datetime64":
        return int(pd.Timestamp(value).value) // 1_000
    return None


def _parse_iso(text: str, field: str) -> int:
    import pandas as pd

    stripped = text.strip()
    if stripped.lstrip("-").isdigit():
        return _int_to_us(int(stripped), None, field)
    try:
        ts = pd.Timestamp(stripped)
    except (ValueError, TypeError) as e:
        raise InvalidArgument(
            f"{field} = {text!r} is not an ISO-8601 time: write it like '2024-01-31T12:00:00Z'"
        ) from e
    if pd.isna(ts):
        raise InvalidArgument(f"{field} = {text!r} is not a time")
    return _pandas_timestamp(ts) or 0


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
