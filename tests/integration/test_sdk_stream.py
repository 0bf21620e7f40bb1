"""StreamInput as the setup guide uses it (``StreamInput(history_provider=provider)``): stored
history, then live bars from the provider's live fetcher, with no overlap and no gap at the seam;
against the real QuestDB, the clock replayed so the live part takes no wall time."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import pytest

from seamfill.core.types import Dataset, Series, TimeRange
from seamfill.sdk import AsyncSeamlessProvider, SeamlessProvider, SeamlessSettings, StreamInput
from seamfill.sdk.backfill.fetchers import SyntheticFetcher
from tests.sdk_support import MIN, T0, create_bars_table, drop_table, grid, insert_bars

pytestmark = pytest.mark.integration

HOSTILE = '\'; DROP TABLE x; --\n"ü,₿"'


class LiveFeed:
    """Live bars for any range, and a few before it (the seam must drop what overlaps)."""

    def __init__(self) -> None:
        self.asked: list[TimeRange] = []
        self.inner = SyntheticFetcher(seed=7)

    def fetch(self, series: Series, rng: TimeRange, dataset: Dataset) -> pd.DataFrame:
        self.asked.append(rng)
        wider = TimeRange(rng.start_us - 5 * dataset.interval_us, rng.end_us)
        return self.inner.frame(series, wider, dataset)


class Clock:
    """Replayed time: each pause moves it one bar on."""

    def __init__(self, now_us: int) -> None:
        self.now_us = now_us
        self.pauses = 0

    def __call__(self) -> int:
        return self.now_us

    async def sleep(self, seconds: float) -> None:
        self.pauses += 1
        self.now_us += MIN


def _settings(table: str, url: str) -> SeamlessSettings:
    # Settled history ends at T0 + 60 min; everything after it is the live fetcher's.
    # (half a bar short, so the settled edge rounds down onto T0 + 60 min)
    now = time.time_ns() // 1_000
    settle_ms = (now - now % MIN - (T0 + 60 * MIN) - MIN // 2) // 1_000
    return SeamlessSettings(
        questdb_url=url,
        table=table,
        dataset=table,
        strategy="seamless",
        settle_ms=settle_ms,
        cache_bytes=0,
    )


@pytest.fixture
def table(questdb_url: str, unique: str) -> Any:
    name = f"stream_{unique}"
    create_bars_table(questdb_url, name)
    insert_bars(questdb_url, name, HOSTILE, grid(T0, 60), price=10.0)
    yield name
    drop_table(questdb_url, name)


async def _collect(stream: StreamInput) -> pd.DataFrame:
    frames = [f async for f in stream]
    return pd.concat(frames, ignore_index=True)


async def test_history_then_live_with_no_overlap_and_no_gap(questdb_url: str, table: str) -> None:
    feed = LiveFeed()
    clock = Clock(T0 + 90 * MIN + 30_000_000)
    async with AsyncSeamlessProvider(_settings(table, questdb_url), live_fetcher=feed) as p:
        stream = StreamInput(
            history_provider=p,
            node_id=HOSTILE,
            start=T0,
            end=T0 + 120 * MIN,
            clock=clock,
            sleep=clock.sleep,
        )
        got = await _collect(stream)
    ts = got["ts"].dt.as_unit("us").astype("int64").tolist()
    assert ts == grid(T0, 120)  # every bar once, in order: nothing lost or doubled at the seam
    assert set(got["symbol"].astype(str)) == {HOSTILE}
    assert (got["close"].iloc[:60] == 10.5).all()  # stored history
    assert not (got["close"].iloc[60:] == 10.5).any()  # live bars
    assert clock.pauses >= 29 and feed.asked  # live bars came one closed bar at a time
    assert all(r.start_us >= T0 + 60 * MIN for r in feed.asked)
    assert stream.last is not None and stream.last.meta.live_rows >= 1


def test_the_plain_provider_streams_too(questdb_url: str, table: str) -> None:
    import asyncio

    clock = Clock(T0 + 60 * MIN)
    with SeamlessProvider(_settings(table, questdb_url), live_fetcher=LiveFeed()) as p:
        stream = StreamInput(
            history_provider=p,
            node_id=HOSTILE,
            start=T0 + 30 * MIN,
            end=T0 + 63 * MIN,
            clock=clock,
            sleep=clock.sleep,
            window_bars=7,
        )
        got = asyncio.run(_collect(stream))
    ts = got["ts"].dt.as_unit("us").astype("int64").tolist()
    assert ts == grid(T0 + 30 * MIN, 33)
