"""One series' bars as an async iterator: stored history, then live bars as each one closes.

    stream = StreamInput(history_provider=provider, node_id="binance.ohlcv_1m/BTC-USDT",
                         start="2024-01-01")
    async for frame in stream:      # pandas frames of consecutive closed bars, in time order
        ...

Every step is one provider read (:meth:`AsyncSeamlessProvider.read`), so the strategy and the SLA
apply as they do to any read: history comes from storage (gaps filled as the strategy says), the
still-forming edge from the provider's live fetcher. Each frame starts at the bar after the last
one yielded, so the seam between history and live has no overlap; a frame is cut at the first gap
a read reports, and the next read starts there, so no bar is skipped either. Only closed bars are
yielded (a bar whose end is not past the clock is still forming and would change).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pandas as pd

from seamfill.core import ranges
from seamfill.core.errors import InvalidArgument
from seamfill.core.timeconv import to_us
from seamfill.sdk.result import SeamlessResult


def _now_us() -> int:
    return time.time_ns() // 1_000


class StreamInput:
    """Bars of ``node_id`` from ``start`` (until ``end``, or forever) from ``history_provider``.

    ``history_provider``: an :class:`~seamfill.sdk.provider.AsyncSeamlessProvider` (or the plain
    :class:`~seamfill.sdk.provider.SeamlessProvider`, whose reads then run on a thread).
    ``window_bars``: the most bars one history read asks for. ``poll_s``: the pause between live
    reads (default: one bar). ``clock`` (microseconds since the epoch) and ``sleep`` are for
    tests and replays.
    """

    def __init__(
        self,
        history_provider: Any,
        *,
        node_id: str,
        start: Any,
        end: Any = None,
        window_bars: int = 100_000,
        poll_s: float | None = None,
        clock: Callable[[], int] = _now_us,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if window_bars < 1:
            raise InvalidArgument(f"window_bars = {window_bars!r} must be a positive int of bars")
        self.provider = history_provider
        self.node_id = node_id
        unit = history_provider.settings.time_unit
        self.start_us = to_us(start, "start", unit=unit)
        self.end_us = None if end is None else to_us(end, "end", unit=unit)
        if self.end_us is not None and self.end_us < self.start_us:
            raise InvalidArgument(f"end {end!r} is before start {start!r}: swap them")
        self.window_bars = window_bars
        self.poll_s = poll_s
        self.clock = clock
        self.sleep = sleep
        self.last: SeamlessResult | None = None
        """The last read's result (its metadata: coverage, gaps, SLA downgrades)."""

    async def _read(self, start_us: int, end_us: int) -> SeamlessResult:
        read = self.provider.read
        if inspect.iscoroutinefunction(read):
            result: SeamlessResult = await read(start_us, end_us, node_id=self.node_id)
        else:
            result = await asyncio.to_thread(read, start_us, end_us, node_id=self.node_id)
        self.last = result
        return result

    def __aiter__(self) -> AsyncIterator[pd.DataFrame]:
        return self._bars()

    async def _bars(self) -> AsyncIterator[pd.DataFrame]:
        # One bar's read tells the grid; its rows are read again with the first window.
        probe = await self._read(self.start_us, self.start_us + 1)
        step = probe.meta.interval_us
        at = ranges.align_up(self.start_us, step)
        while self.end_us is None or at < self.end_us:
            closed = ranges.align_down(self.clock(), step)
            stop = closed if self.end_us is None else min(closed, self.end_us)
            stop = min(stop, at + self.window_bars * step)
            if stop <= at:
                await self.sleep(self.poll_s if self.poll_s is not None else step / 1e6)
                continue
            result = await self._read(at, stop)
            frame, at = _after(result, at, stop, step)
            if len(frame):
                yield frame
            elif at < stop:
                await self.sleep(self.poll_s if self.poll_s is not None else step / 1e6)


def _after(result: SeamlessResult, at: int, stop: int, step: int) -> tuple[pd.DataFrame, int]:
    """The rows of ``result`` from ``at``, cut at its first gap; and where the next read starts."""
    frame = result.frame
    ts = frame["ts"].dt.as_unit("us").astype("int64")
    cut = min((g.start_us for g in result.meta.gaps if g.end_us > at), default=stop)
    keep = frame[((ts >= at) & (ts < cut)).to_numpy()].reset_index(drop=True)
    if cut < stop:
        return keep, cut
    if len(keep) == 0:
        # Nothing stored and nothing live yet beyond the settled part: ask again from here
        # unless the read says the range is covered (then it truly holds no bars).
        covered = ranges.total(result.meta.covered)
        settled_end = max((r.end_us for r in result.meta.covered), default=at)
        return keep, settled_end if covered else at
    last = int(keep["ts"].iloc[-1].value // 1_000)
    settled_end = max((r.end_us for r in result.meta.covered), default=at)
    return keep, max(last + step, min(settled_end, stop))
