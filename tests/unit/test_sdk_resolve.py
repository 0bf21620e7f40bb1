"""Naming what to read (node ids), and fetchers of either shape behind one interface."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from seamfill.core.errors import InvalidArgument
from seamfill.core.timeconv import to_us, us_to_iso
from seamfill.core.types import MAX_TS_US, Dataset, Series, TimeRange
from seamfill.sdk.backfill.adapters import LegacyFetcherAdapter, as_fetcher
from seamfill.sdk.read._steps import local_dataset, resolve_series
from seamfill.sdk.settings import SeamlessSettings

MIN = 60_000_000
T0 = 1_704_067_200_000_000
DS = Dataset("d.bars", "d_bars", "inline", MIN)


def test_node_ids() -> None:
    with_default = SeamlessSettings(dataset="binance.ohlcv_1m")
    assert resolve_series("BTC-USDT", with_default, {}) == Series("binance.ohlcv_1m", "BTC-USDT")
    # A slash inside a symbol stays in the symbol when a default dataset is set...
    assert resolve_series("BTC/USDT", with_default, {}) == Series("binance.ohlcv_1m", "BTC/USDT")
    # ...unless the head is a dataset: known, dotted, or there is no default to fall back to.
    assert resolve_series("kraken.ohlcv_1m/BTC/USD", with_default, {}) == Series(
        "kraken.ohlcv_1m", "BTC/USD"
    )
    assert resolve_series("market_data/X", SeamlessSettings(), {}) == Series("market_data", "X")
    assert resolve_series("bars/X", with_default, {"bars": DS}) == Series("bars", "X")
    with pytest.raises(InvalidArgument, match="names no dataset"):
        resolve_series("BTC", SeamlessSettings(), {})
    with pytest.raises(InvalidArgument, match="node_id"):
        resolve_series("", with_default, {})


def test_inline_dataset_follows_settings_and_the_callers_interval() -> None:
    s = SeamlessSettings(table="market_data", interval="1m", settle_ms=5000)
    known: dict[str, Dataset] = {}
    ds = local_dataset(Series("market_data", "X"), None, s, known)
    assert (ds.table, ds.interval_us, ds.settle_us) == ("market_data", MIN, 5_000_000)
    assert local_dataset(Series("market_data", "X"), 300, s, known).interval_us == 5 * MIN
    with pytest.raises(InvalidArgument, match="not configured"):
        local_dataset(Series("other", "X"), None, s.with_overrides(dataset="market_data"), known)


class Legacy:
    def fetch(self, start: int, end: int, *, node_id: str, interval: int) -> pd.DataFrame:
        ts = np.arange(start - interval, end + interval, interval, dtype=np.int64)
        return pd.DataFrame(
            {"ts": ts, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 3.0}
        )


class Plain:
    def fetch(self, series: Series, range: TimeRange, dataset: Dataset) -> pd.DataFrame:
        return pd.DataFrame({"ts": [range.start_us]})


def test_legacy_fetchers_are_adapted_and_clipped() -> None:
    f = as_fetcher(Legacy())
    assert isinstance(f, LegacyFetcherAdapter)
    frame = asyncio.run(f.fetch(Series("d.bars", "X"), TimeRange(T0, T0 + 5 * MIN), DS))
    assert len(frame) == 5 and "symbol" not in frame.columns
    assert frame["ts"].iloc[0].value // 1000 == T0
    assert str(frame["ts"].dtype) == "datetime64[us, UTC]"


def test_plain_sync_fetchers_are_awaited() -> None:
    frame = asyncio.run(
        as_fetcher(Plain()).fetch(Series("d.bars", "X"), TimeRange(T0, T0 + MIN), DS)
    )
    assert frame["ts"].tolist() == [T0]


@given(st.integers(min_value=0, max_value=MAX_TS_US))
def test_iso_round_trip_is_exact(us: int) -> None:
    assert to_us(us_to_iso(us)) == us
