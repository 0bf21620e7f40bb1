"""Fetcher adapters: any fetcher a user hands in, as seamfill's async ``fetch(series, range,
dataset)``.

Fetchers may implement seamfill's ``fetch(series, range, dataset)`` (sync or async) or the
reference design's ``fetch(start, end, *, node_id, interval)`` with epoch-second ints;
:func:`as_fetcher` adapts either, for inline backfill and the live edge alike.
"""

from __future__ import annotations

import inspect
from typing import Any

import pandas as pd

from seamfill.core.types import Dataset, Series, TimeRange
from seamfill.sdk.backfill.fetchers import Fetcher
from seamfill.sdk.read.storage import coerce_bars

__all__ = ["LegacyFetcherAdapter", "as_fetcher", "is_legacy"]


def is_legacy(fetcher: Any) -> bool:
    fetch = getattr(fetcher, "fetch", None)
    if fetch is None:
        return False
    try:
        params = inspect.signature(fetch).parameters
    except (TypeError, ValueError):
        return False
    return "node_id" in params


class LegacyFetcherAdapter:
    """Runs a ``fetch(start, end, *, node_id, interval)`` fetcher (epoch seconds, in and out:
    integer ``ts`` it returns are seconds) as a seamfill fetcher: times converted, rows
    clipped to the range, ``ts`` as datetime64."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def fetch(self, series: Series, range: TimeRange, dataset: Dataset) -> pd.DataFrame:
        result = self.inner.fetch(
            range.start_us // 1_000_000,
            -(-range.end_us // 1_000_000),
            node_id=series.symbol,
            interval=max(1, dataset.interval_us // 1_000_000),
        )
        if inspect.isawaitable(result):
            result = await result
        frame = coerce_bars(result, series.symbol, unit="s")
        ts = frame["ts"].astype("int64")
        frame = frame[(ts >= range.start_us) & (ts < range.end_us)]
        return frame.drop(columns=["symbol"]).reset_index(drop=True)


class _SyncFetcherAdapter:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def fetch(self, series: Series, range: TimeRange, dataset: Dataset) -> Any:
        result = self.inner.fetch(series, range, dataset)
        if inspect.isawaitable(result):
            result = await result
        return result


def as_fetcher(fetcher: Any) -> Fetcher:
    """``fetcher`` as seamfill's async ``fetch(series, range, dataset)``."""
    if is_legacy(fetcher):
        return LegacyFetcherAdapter(fetcher)
    if inspect.iscoroutinefunction(getattr(fetcher, "fetch", None)):
        return fetcher  # type: ignore[no-any-return]
    return _SyncFetcherAdapter(fetcher)
