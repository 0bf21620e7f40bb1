"""The live edge: a :class:`LiveFetcher` for the still-forming bars, stitched after history.

The settled history ends at the dataset's settled edge (the forming bar and the settle margin are
never covered, DESIGN invariant 6). A live fetcher answers for the rest of a requested range; its
rows are appended only where the stored frame has none, so the seam has no overlap and no hole the
two sources could both have filled.
"""

from __future__ import annotations

import inspect
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from seamfill.core.types import Dataset, Series, TimeRange


@runtime_checkable
class LiveFetcher(Protocol):
    """Fetches the forming edge of a series. ``fetch`` may be async or plain.

    Implement ``fetch(series, range, dataset)`` returning a frame with a ``ts`` column (datetime
    or epoch int) and ``open, high, low, close, volume``; rows outside ``range`` are dropped.
    The same shape as the backfill fetcher's interface, so one class may serve as both.
    """

    def fetch(self, series: Series, range: TimeRange, dataset: Dataset) -> Any: ...


async def call_fetch(fetcher: Any, series: Series, rng: TimeRange, dataset: Dataset) -> Any:
    """Call a fetcher's ``fetch``, awaiting it when it is a coroutine."""
    result = fetcher.fetch(series, rng, dataset)
    if inspect.isawaitable(result):
        result = await result
    return result


def stitch(stored: pd.DataFrame, live: pd.DataFrame, edge_us: int) -> pd.DataFrame:
    """``stored``, then the rows of ``live`` after both ``edge_us`` and the last stored bar."""
    if live.empty:
        return stored
    cut = edge_us
    if not stored.empty:
        cut = max(cut, int(stored["ts"].iloc[-1].value // 1_000) + 1)
    live_us = live["ts"].astype("int64")
    tail = live[live_us >= cut]
    if tail.empty:
        return stored
    if stored.empty:
        return tail.reset_index(drop=True)
    return pd.concat([stored, tail], ignore_index=True)
