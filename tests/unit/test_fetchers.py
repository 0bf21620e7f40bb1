"""The fetcher plugin interface, its registry and the synthetic source (pure, no servers)."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from seamfill.core.errors import (
    ConfigError,
    FetchError,
    SchemaMismatch,
    StorageError,
)
from seamfill.core.types import Dataset, Series, TimeRange
from seamfill.sdk.backfill.chunk import is_retryable, validate_frame
from seamfill.sdk.backfill.fetchers import (
    COLUMNS,
    Fetcher,
    SyntheticFetcher,
    available_fetchers,
    load_fetcher,
    source_name,
)

MIN = 60_000_000
DS = Dataset("demo.ohlcv_1m", "ohlcv_1m", "synthetic", MIN)
SERIES = Series(DS.name, "BTC-USDT")
T0 = 1_700_000_000_000_000 // MIN * MIN


def test_synthetic_rows_lie_on_the_grid_within_the_range() -> None:
    # A range whose ends fall between bars: only whole grid points inside it come back.
    r = TimeRange(T0 + 1, T0 + 10 * MIN + 1)
    df = SyntheticFetcher().frame(SERIES, r, DS)
    ts = df["ts"].to_numpy(dtype="datetime64[us]").astype(np.int64)
    assert list(df.columns) == list(COLUMNS["bars"])
    assert len(df) == 10
    assert ts[0] == T0 + MIN and ts[-1] == T0 + 10 * MIN
    assert (ts % MIN == 0).all()
    assert ((ts >= r.start_us) & (ts < r.end_us)).all()


def test_synthetic_is_deterministic_and_sub_ranges_agree() -> None:
    whole = SyntheticFetcher(seed=7).frame(SERIES, TimeRange(T0, T0 + 3000 * MIN), DS)
    again = SyntheticFetcher(seed=7).frame(SERIES, TimeRange(T0, T0 + 3000 * MIN), DS)
    part = SyntheticFetcher(seed=7).frame(SERIES, TimeRange(T0 + 1000 * MIN, T0 + 1500 * MIN), DS)
    pd.testing.assert_frame_equal(whole, again)
    pd.testing.assert_frame_equal(whole.iloc[1000:1500].reset_index(drop=True), part)


def test_synthetic_differs_by_symbol_and_seed() -> None:
    r = TimeRange(T0, T0 + 100 * MIN)
    a = SyntheticFetcher().frame(SERIES, r, DS)
    b = SyntheticFetcher().frame(Series(DS.name, "ETH-USDT"), r, DS)
    c = SyntheticFetcher(seed=1).frame(SERIES, r, DS)
    assert not np.allclose(a["open"], b["open"])
    assert not np.allclose(a["open"], c["open"])


def test_synthetic_bars_are_sane_ohlc() -> None:
    df = SyntheticFetcher().frame(SERIES, TimeRange(T0, T0 + 20_000 * MIN), DS)
    assert (df["low"] <= df[["open", "close"]].min(axis=1)).all()
    assert (df["high"] >= df[["open", "close"]].max(axis=1)).all()
    assert (df["volume"] > 0).all()
    assert np.isfinite(df[["open", "high", "low", "close", "volume"]].to_numpy()).all()


def test_synthetic_gap_every_leaves_holes_and_empty_ranges_are_empty() -> None:
    holes = SyntheticFetcher(gap_every=10).frame(SERIES, TimeRange(T0, T0 + 100 * MIN), DS)
    assert len(holes) == 90
    empty = asyncio.run(SyntheticFetcher().fetch(SERIES, TimeRange(T0, T0), DS))
    assert empty.empty


def test_synthetic_trades_have_the_trades_columns() -> None:
    ds = Dataset("demo.trades", "trades", "synthetic", 1_000_000, kind="trades")
    df = SyntheticFetcher().frame(Series(ds.name, "X"), TimeRange(T0, T0 + 50_000_000), ds)
    assert list(df.columns) == list(COLUMNS["trades"]) and len(df) == 50
    validate_frame(df, Series(ds.name, "X"), TimeRange(T0, T0 + 50_000_000), ds)


def test_registry_loads_plugins_by_name_or_source() -> None:
    assert "synthetic" in available_fetchers()
    assert source_name("ccxt:binance") == "ccxt"
    f = load_fetcher("synthetic:anything", seed="3")
    assert isinstance(f, SyntheticFetcher) and isinstance(f, Fetcher) and f.seed == 3


def test_registry_errors_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="no fetcher plugin named 'nope'"):
        load_fetcher("nope")
    with pytest.raises(ConfigError, match="rejected its options"):
        load_fetcher("synthetic", colour="red")


def _bars(ts: list[int]) -> pd.DataFrame:
    n = len(ts)
    return pd.DataFrame(
        {
            "ts": ts,
            "open": [1.0] * n,
            "high": [2.0] * n,
            "low": [0.5] * n,
            "close": [1.5] * n,
            "volume": [10] * n,
        }
    )


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        ([1, 2], "expected a pandas DataFrame"),
        (_bars([T0]).drop(columns=["volume"]), "missing column"),
        (_bars([T0 + 100 * MIN]), "outside the range"),
        (_bars([T0 + 1]), "off the"),
        (_bars([T0, T0]), "duplicate"),
        (_bars([T0]).assign(open=["x"]), "'open' is not numeric"),
        (_bars([T0]).assign(ts=["2024"]), "column 'ts' has dtype"),
    ],
)
def test_validate_frame_rejects_contract_breaks_as_terminal(frame: object, problem: str) -> None:
    with pytest.raises(FetchError, match=problem) as info:
        validate_frame(frame, SERIES, TimeRange(T0, T0 + 10 * MIN), DS)
    assert info.value.retryable is False


def test_validate_frame_accepts_int_and_tz_aware_timestamps() -> None:
    r = TimeRange(T0, T0 + 10 * MIN)
    a = validate_frame(_bars([T0, T0 + MIN]), SERIES, r, DS)
    aware = _bars([T0, T0 + MIN]).assign(
        ts=pd.to_datetime([T0, T0 + MIN], unit="us", utc=True).tz_convert("Asia/Tokyo")
    )
    b = validate_frame(aware, SERIES, r, DS)
    pd.testing.assert_frame_equal(a, b)
    assert str(a["ts"].dtype) == "datetime64[us]" and a["volume"].dtype == np.float64


def test_retryable_classification() -> None:
    assert is_retryable(FetchError("429", retryable=True))
    assert not is_retryable(FetchError("400", retryable=False))
    assert not is_retryable(SchemaMismatch("column 'open'"))
    assert is_retryable(StorageError("not visible"))
    assert is_retryable(TimeoutError())
    assert not is_retryable(ValueError())


def test_validate_frame_puts_rows_in_time_order() -> None:
    frame = _bars([T0 + 2 * MIN, T0, T0 + MIN]).assign(open=[3.0, 1.0, 2.0])
    out = validate_frame(frame, SERIES, TimeRange(T0, T0 + 10 * MIN), DS)
    assert out["open"].tolist() == [1.0, 2.0, 3.0]
    assert out["ts"].is_monotonic_increasing
