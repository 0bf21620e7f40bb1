"""Fetchers the worker e2e tests register with ``seamfill worker run --fetcher NAME=...``.

``Scripted`` serves synthetic bars, but a symbol's prefix scripts the upstream's behaviour:

- ``FLAKY…``: the first fetch of each chunk fails as a 429 would (retryable), later ones succeed;
  the "first" is remembered in ``state_dir`` so it holds across worker processes;
- ``BAD…``: every fetch fails as a 400 would (terminal);
- ``SLOW…``: the fetch first sleeps ``SEAMFILL_TEST_FETCH_DELAY`` seconds (from the worker's
  environment, so one worker of a test can be slow and another not).

Whatever the symbol, while ``state_dir/outage_until`` holds an epoch time still to come, every
fetch fails as an upstream answering 503 Service Unavailable would (the test writes the file).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path

import pandas as pd

from seamfill.core.errors import FetchError
from seamfill.core.types import Dataset, Series, TimeRange
from seamfill.sdk.backfill.fetchers import SyntheticFetcher


class Scripted:
    def __init__(self, *, state_dir: str = "", seed: str = "0") -> None:
        self.state_dir = Path(state_dir) if state_dir else None
        self.synthetic = SyntheticFetcher(seed=seed)

    async def fetch(self, series: Series, range: TimeRange, dataset: Dataset) -> pd.DataFrame:
        symbol = series.symbol
        if self._outage():
            raise FetchError(
                "upstream answered 503 Service Unavailable; will retry", retryable=True
            )
        if symbol.startswith("BAD"):
            raise FetchError(
                f"upstream answered 400 Bad Request: unknown symbol {symbol!r}; fix the symbol",
                retryable=False,
            )
        if symbol.startswith("FLAKY") and self._first_time(series, range):
            raise FetchError("upstream answered 429 Too Many Requests; will retry", retryable=True)
        if symbol.startswith("SLOW"):
            await asyncio.sleep(float(os.environ.get("SEAMFILL_TEST_FETCH_DELAY", "0")))
        return await self.synthetic.fetch(series, range, dataset)

    def _outage(self) -> bool:
        if self.state_dir is None:
            return False
        try:
            until = float((self.state_dir / "outage_until").read_text())
        except (FileNotFoundError, ValueError):
            return False
        return time.time() < until

    def _first_time(self, series: Series, range: TimeRange) -> bool:
        assert self.state_dir is not None, "FLAKY symbols need the state_dir option"
        key = hashlib.sha256(f"{series}|{range.start_us}".encode()).hexdigest()[:16]
        marker = self.state_dir / key
        try:
            marker.touch(exist_ok=False)
        except FileExistsError:
            return False
        return True
