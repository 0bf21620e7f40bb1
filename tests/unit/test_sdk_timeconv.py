"""Times and intervals at the SDK's edge become int microseconds, once."""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest

from seamfill.core.errors import InvalidArgument, InvalidRange
from seamfill.core.timeconv import ACCEPTED, interval_to_us, to_range, to_us, us_to_iso

T_US = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2024, 1, 1),  # naive means UTC
        dt.datetime(2024, 1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        pd.Timestamp("2024-01-01", tz="UTC"),
        pd.Timestamp("2024-01-01"),
        np.datetime64("2024-01-01T00:00:00"),
        "2024-01-01T00:00:00Z",
        "2024-01-01",
        dt.date(2024, 1, 1),
    ],
)
def test_every_accepted_form_gives_the_same_microseconds(value: object) -> None:
    assert to_us(value) == T_US


def test_explicit_unit_overrides_the_size_rule() -> None:
    assert to_us(5, unit="us") == 5
    assert to_us(5, unit="ms") == 5_000
    assert to_us(5_000, unit="ns") == 5


def test_pandas_nanoseconds_are_truncated_to_micros() -> None:
    assert to_us(pd.Timestamp("2024-01-01T00:00:00.0000019Z")) == T_US + 1


@pytest.mark.parametrize("value", [1.5, True, None, "yesterday-ish", object(), T_US])
def test_bad_times_name_the_field(value: object) -> None:
    with pytest.raises(InvalidArgument, match="start"):
        to_us(value, "start")


def test_range_is_half_open_and_checked() -> None:
    r = to_range("2024-01-01", "2024-01-02")
    assert (r.start_us, r.end_us) == (T_US, T_US + 86_400_000_000)
    with pytest.raises(InvalidRange, match="not after start"):
        to_range("2024-01-02", "2024-01-01")


@pytest.mark.parametrize(
    ("value", "us"),
    [
        (60, 60_000_000),
        ("1m", 60_000_000),
        ("5min", 300_000_000),
        ("1h", 3_600_000_000),
        ("1d", 86_400_000_000),
        (dt.timedelta(minutes=1), 60_000_000),
        (pd.Timedelta("1min"), 60_000_000),
        (pd.tseries.frequencies.to_offset("1min"), 60_000_000),
    ],
)
def test_intervals(value: object, us: int) -> None:
    assert interval_to_us(value) == us


@pytest.mark.parametrize("value", ["", "1 fortnight", 0, -60, "m1", 1.0])
def test_bad_intervals_name_the_field(value: object) -> None:
    with pytest.raises(InvalidArgument, match="interval"):
        interval_to_us(value)


def test_iso_is_exact_to_the_microsecond() -> None:
    assert us_to_iso(T_US + 1) == "2024-01-01T00:00:00.000001Z"
    assert to_us(us_to_iso(T_US + 123_456)) == T_US + 123_456


def _instant(*parts: int, offset_h: int = 0) -> int:
    """Microseconds of a UTC wall time, computed without the code under test (or pandas)."""
    return (calendar.timegm((*parts, 0, 0, 0)[:6]) - offset_h * 3600) * 1_000_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-31", _instant(2024, 1, 31)),
        ("2024-01-31T12:00:00Z", _instant(2024, 1, 31, 12)),
        ("2024-01-31T12:00:00", _instant(2024, 1, 31, 12)),  # no offset: UTC
        ("2024-01-31T12:00:00+02:00", _instant(2024, 1, 31, 12, offset_h=2)),
        ("2024-01-31 12:00:00-05:00", _instant(2024, 1, 31, 12, offset_h=-5)),
        ("2024-01-31T12:00:00.250000Z", _instant(2024, 1, 31, 12) + 250_000),
        ("1969-07-20T20:17:00Z", _instant(1969, 7, 20, 20, 17)),
        ("20240101", _instant(2024, 1, 1)),  # a date, not 20,240,101 epoch seconds
        ("19991231", _instant(1999, 12, 31)),
    ],
)
def test_text_forms_give_their_instant(text: str, expected: int) -> None:
    assert to_us(text) == expected


def test_a_tz_aware_datetime_is_its_instant() -> None:
    tokyo = dt.timezone(dt.timedelta(hours=9))
    assert to_us(dt.datetime(2024, 1, 1, 9, tzinfo=tokyo)) == _instant(2024, 1, 1)
    assert to_us(pd.Timestamp("2024-01-01 09:00", tz="Asia/Tokyo")) == _instant(2024, 1, 1)


@pytest.mark.parametrize(
    "kind", [int, np.int64, np.int32, np.uint64, np.int16, lambda v: pd.array([v], "Int64")[0]]
)
@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (1_704, "s", 1_704_000_000),
        (10_000, "ms", 10_000_000),  # 10 s after the epoch: pre-1973 ms stay ms
        (1_704, "us", 1_704),
        (20_000, "ns", 20),
    ],
)
def test_integers_of_any_type_take_their_explicit_unit(
    kind: Any, value: int, unit: str, expected: int
) -> None:
    assert to_us(kind(value), unit=unit) == expected


def test_pre_1973_milliseconds_are_not_read_as_seconds() -> None:
    may_1970_ms = 10_000_000_000  # 1970-04-26T17:46:40Z in milliseconds
    assert to_us(may_1970_ms, unit="ms") == _instant(1970, 4, 26, 17, 46, 40)
    with pytest.raises(InvalidArgument, match="without a unit"):
        to_us(may_1970_ms)


@pytest.mark.parametrize("text", ["01/02/2024", "02.01.2024", "Jan 2 2024", "2024/01/02", "now"])
def test_ambiguous_or_foreign_forms_are_refused_naming_the_accepted_ones(text: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        to_us(text, "start")
    assert "start" in e.value.message and ACCEPTED in e.value.message


def test_a_huge_bad_value_is_quoted_by_a_short_prefix() -> None:
    with pytest.raises(InvalidArgument) as e:
        to_us("x" * 1_000_000, "start")
    assert len(e.value.message) < 500
