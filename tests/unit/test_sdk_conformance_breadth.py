"""Conformance breadth: user schemas with casting, timestamps to UTC, an explicit time unit, inf to
NaN, trades and quotes rules, duplicates reported both ways. Expected values are written out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seamfill.core.errors import ConfigError, ConformanceError
from seamfill.sdk.quality.conformance import ConformancePipeline

MIN_US = 60_000_000
T0_US = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z


def bars(ts: object, close: object = (10.5, 11.5, 12.5)) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": ts,
            "symbol": "BTC",
            "open": [10.0, 11.0, 12.0],
            "high": [11.0, 12.0, 13.0],
            "low": [9.0, 10.0, 11.0],
            "close": close,
            "volume": [1.0, 2.0, 3.0],
        }
    )


UTC_TS = pd.to_datetime([T0_US, T0_US + MIN_US, T0_US + 2 * MIN_US], unit="us", utc=True)


def test_an_int_close_is_cast_to_float_by_the_users_schema() -> None:
    frame = bars(UTC_TS, close=[10, 11, 12])
    with pytest.raises(ConformanceError, match="close has dtype int64, expected float64"):
        ConformancePipeline().run(frame, MIN_US)
    out, report = ConformancePipeline(dtypes={"close": "float64"}).run(frame, MIN_US)
    assert str(out["close"].dtype) == "float64"
    assert out["close"].tolist() == [10.0, 11.0, 12.0]
    assert report.ok and report.details["cast"] == "close: int64 -> float64"


def test_a_text_close_is_parsed_and_a_bad_value_is_named() -> None:
    out, _ = ConformancePipeline(dtypes={"close": "float64"}).run(
        bars(UTC_TS, close=["10.5", "11.5", "12.5"]), MIN_US
    )
    assert out["close"].tolist() == [10.5, 11.5, 12.5]
    with pytest.raises(ConformanceError, match="column 'close' cannot be cast to float64"):
        ConformancePipeline(dtypes={"close": "float64"}).run(
            bars(UTC_TS, close=["10.5", "n/a", "12.5"]), MIN_US
        )


def test_iso_strings_with_offsets_become_utc() -> None:
    text = ["2024-01-01T01:00:00+01:00", "2024-01-01T00:01:00Z", "2023-12-31T19:02:00-05:00"]
    out, report = ConformancePipeline().run(bars(text), MIN_US)
    assert str(out["ts"].dtype) == "datetime64[us, UTC]"
    assert out["ts"].astype("int64").tolist() == [T0_US, T0_US + MIN_US, T0_US + 2 * MIN_US]
    assert report.ok


def test_tz_aware_and_naive_timestamps_become_utc() -> None:
    tokyo = UTC_TS.tz_convert("Asia/Tokyo")  # 09:00 local is 00:00 UTC
    out, _ = ConformancePipeline().run(bars(tokyo), MIN_US)
    assert out["ts"].astype("int64").tolist() == [T0_US, T0_US + MIN_US, T0_US + 2 * MIN_US]
    naive = UTC_TS.tz_localize(None)
    out, _ = ConformancePipeline().run(bars(naive), MIN_US)
    assert str(out["ts"].dtype) == "datetime64[us, UTC]"
    assert out["ts"].iloc[0] == pd.Timestamp("2024-01-01T00:00:00Z")


def test_an_explicit_time_unit_is_used_not_guessed() -> None:
    # 1971-01-01 in microseconds: 31_536_000_000_000. By size alone it looks like milliseconds
    # (year 2969); with time_unit="us" it is read as what the caller says.
    hour_us = 3_600_000_000
    ts = [31_536_000_000_000, 31_536_000_000_000 + hour_us, 31_536_000_000_000 + 2 * hour_us]
    out, _ = ConformancePipeline(time_unit="us").run(bars(ts), hour_us)
    assert out["ts"].iloc[0] == pd.Timestamp("1971-01-01T00:00:00Z")
    ms = [1_704_067_200_000, 1_704_067_260_000, 1_704_067_320_000]
    out, _ = ConformancePipeline(time_unit="ms").run(bars(ms), MIN_US)
    assert out["ts"].iloc[0] == pd.Timestamp("2024-01-01T00:00:00Z")
    with pytest.raises(ConformanceError, match="ts has dtype int64"):  # no unit: no guess
        ConformancePipeline().run(bars(ms), MIN_US)
    with pytest.raises(ConfigError, match=r"conformance\.time_unit = 'µs' is not one of s, ms"):
        ConformancePipeline(time_unit="µs")


def test_inf_becomes_nan_when_asked() -> None:
    frame = bars(UTC_TS, close=[10.5, np.inf, 12.5])
    with pytest.raises(ConformanceError, match="non_finite=1"):
        ConformancePipeline().run(frame, MIN_US)
    pipe = ConformancePipeline(inf_to_nan=True, severities={"non_finite": "warning"})
    out, report = pipe.run(frame, MIN_US)
    assert np.isnan(out["close"].iloc[1]) and out["close"].iloc[2] == 12.5
    assert report.details["inf"] == "1 infinite value(s) set to NaN"
    assert report.warnings == {"non_finite": 1}
    assert np.isinf(frame["close"].iloc[1])  # the caller's frame is untouched


def test_duplicates_are_reported_as_rows_dropped_and_keys_affected() -> None:
    ts = pd.to_datetime(
        [T0_US, T0_US, T0_US, T0_US + MIN_US, T0_US + MIN_US, T0_US + 2 * MIN_US],
        unit="us",
        utc=True,
    )
    frame = pd.DataFrame(
        {
            "ts": ts,
            "symbol": "BTC",
            "open": 1.0,
            "high": 2.0,
            "low": 0.5,
            "close": [1.0, 1.1, 1.2, 1.3, 1.4, 1.5],
            "volume": 1.0,
        }
    )
    out, report = ConformancePipeline(severities={"duplicates": "warning"}).run(frame, MIN_US)
    assert report.duplicate_rows == 3  # two extra copies of T0, one of T0+1m
    assert report.duplicate_keys == 2  # T0 and T0+1m
    assert report.counts["duplicates"] == 3 and report.rows_in == 6 and report.rows_out == 3
    assert out["close"].tolist() == [1.2, 1.4, 1.5]  # the last copy of each key is kept
    assert report.to_dict()["duplicate_keys"] == 2


def quotes(bid: list[float], ask: list[float], bid_size: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": UTC_TS,
            "symbol": "BTC",
            "bid": bid,
            "ask": ask,
            "bid_size": bid_size,
            "ask_size": [1.0, 1.0, 1.0],
        }
    )


def test_quotes_crossed_negative_sizes_and_wide_spreads() -> None:
    frame = quotes(bid=[100.0, 101.0, 90.0], ask=[100.1, 100.5, 110.0], bid_size=[1.0, -2.0, 1.0])
    pipe = ConformancePipeline(kind="quotes", allow_partial=True, max_spread_bps=100)
    _, report = pipe.run(frame, MIN_US)
    assert report.counts["crossed"] == 1  # 101.0 > 100.5
    assert report.counts["negative_size"] == 1  # bid_size -2
    assert report.counts["wide_spread"] == 1  # 20 / 100 of the mid = 2000 bps > 100
    assert report.counts["ohlc"] == 0 and report.counts["grid"] == 0  # bar rules do not run
    assert report.errors == {"crossed": 1, "negative_size": 1}
    assert report.warnings == {"wide_spread": 1}
    with pytest.raises(ConformanceError, match="crossed=1, negative_size=1"):
        ConformancePipeline(kind="quotes").run(frame, MIN_US)


def test_trades_negative_amounts_and_duplicate_trade_ids() -> None:
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime([T0_US, T0_US, T0_US + 5], unit="us", utc=True),
            "symbol": "BTC",
            "trade_id": ["a", "b", "c"],  # two trades in the same microsecond are not duplicates
            "price": [10.0, 10.0, 10.1],
            "amount": [1.0, -0.5, 2.0],
        }
    )
    out, report = ConformancePipeline(kind="trades", allow_partial=True).run(frame, MIN_US)
    assert report.counts["negative_size"] == 1 and report.counts["duplicates"] == 0
    assert report.counts["schema"] == 0 and len(out) == 3
    twice = pd.concat([frame, frame.iloc[[2]]], ignore_index=True)
    _, report = ConformancePipeline(kind="trades", allow_partial=True).run(twice, MIN_US)
    assert (report.duplicate_rows, report.duplicate_keys) == (1, 1)


def test_the_new_options_load_from_yaml_and_name_bad_keys() -> None:
    pipe = ConformancePipeline.from_mapping(
        {"kind": "quotes", "dtypes": {"bid": "float64"}, "time_unit": "ms", "inf_to_nan": True}
    )
    assert (pipe.kind, pipe.time_unit, pipe.inf_to_nan) == ("quotes", "ms", True)
    with pytest.raises(ConfigError, match=r"conformance\.kind = 'ticks' is not one of bars"):
        ConformancePipeline.from_mapping({"kind": "ticks"})
    with pytest.raises(ConfigError, match=r"conformance\.dtypes\.close = 'double' is not one of"):
        ConformancePipeline(dtypes={"close": "double"})
