"""Fingerprints are reproducible, layout-independent and sensitive to every value."""

from __future__ import annotations

import numpy as np
import pandas as pd

from seamfill.core.types import Series, TimeRange
from seamfill.sdk.quality.fingerprint import fingerprint

MIN = 60_000_000
T0 = 1_704_067_200_000_000
S = Series("binance.ohlcv_1m", "BTC-USDT")
R = TimeRange(T0, T0 + 5 * MIN)


def bars() -> pd.DataFrame:
    ts = T0 + np.arange(5, dtype=np.int64) * MIN
    return pd.DataFrame(
        {
            "ts": pd.to_datetime(ts, unit="us", utc=True),
            "symbol": "BTC-USDT",
            "open": [1.0, 2, 3, 4, 5],
            "high": [2.0, 3, 4, 5, 6],
            "low": [0.5, 1, 2, 3, 4],
            "close": [1.5, 2.5, 3.5, 4.5, 5.5],
            "volume": [0.0, 1, 2, 3, 4],
        }
    )


def test_same_data_same_digest_whatever_the_layout() -> None:
    a = fingerprint(bars(), S, R, T0)
    shuffled = bars()[["close", "ts", "volume", "symbol", "open", "high", "low"]]
    shuffled.index = range(100, 105)
    categorical = bars().assign(symbol=pd.Categorical(["BTC-USDT"] * 5))
    assert fingerprint(shuffled, S, R, T0).sha256 == a.sha256
    assert fingerprint(categorical, S, R, T0).sha256 == a.sha256
    assert len(a.sha256) == 64 and a.rows == 5


def test_one_changed_price_changes_it() -> None:
    f = bars()
    f.loc[2, "close"] = 3.5000000001
    assert fingerprint(f, S, R, T0).sha256 != fingerprint(bars(), S, R, T0).sha256


def test_identity_is_part_of_it() -> None:
    base = fingerprint(bars(), S, R, T0).sha256
    assert fingerprint(bars(), Series(S.dataset, "ETH"), R, T0).sha256 != base
    assert fingerprint(bars(), S, TimeRange(T0, T0 + 6 * MIN), T0).sha256 != base
    assert fingerprint(bars(), S, R, T0 + 1).sha256 != base


def test_negative_zero_and_nan_have_one_encoding() -> None:
    a, b = bars(), bars()
    a.loc[0, "volume"], b.loc[0, "volume"] = 0.0, -0.0
    a.loc[1, "open"], b.loc[1, "open"] = np.nan, float("nan")
    assert fingerprint(a, S, R, T0).sha256 == fingerprint(b, S, R, T0).sha256


def test_preview_flag_is_carried() -> None:
    assert fingerprint(bars(), S, R, T0, preview=True).preview
