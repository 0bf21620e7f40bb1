"""Times and intervals at the SDK's edge become int microseconds, once."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from seamfill.core.errors import InvalidArgument, InvalidRange
from seamfill.core.timeconv import interval_to_us, to_range, to_us, us_to_iso

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
        1_704_067_200,  # seconds
        1_704_067_200_000,  # milliseconds
        T_US,  # microseconds
        T_US * 1_000,  # nanoseconds
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


@pytest.mark.parametrize("value", [1.5, True, None, "yesterday-ish", object()])
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
