"""Code written for the reference provider runs with seamfill's imports: one machine, no
coordinator, inline backfill over ILP into the real QuestDB; fetchers of either shape."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import numpy as np
import pandas as pd
import pytest

from seamfill.core.logs import JsonFormatter
from seamfill.sdk import (
    ConformancePipeline,
    DataAvailabilityStrategy,
    EnhancedQuestDBProvider,
    SeamlessSettings,
    SLAPolicy,
)
from tests.sdk_support import MIN, T0, count, drop_table

pytestmark = pytest.mark.integration

T0_S = T0 // 1_000_000


class LegacyFetcher:
    """The reference shape: epoch-second ints in, a frame with an int ``ts`` column out; it
    also returns one bar past the end, which must be dropped."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, str, int]] = []

    async def fetch(self, start: int, end: int, *, node_id: str, interval: int) -> pd.DataFrame:
        self.calls.append((start, end, node_id, interval))
        ts = np.arange(start, end + interval, interval, dtype=np.int64)
        price = 100.0 + (ts - T0_S) / 60.0
        return pd.DataFrame(
            {
                "ts": ts,
                "open": price,
                "high": price + 1,
                "low": price - 1,
                "close": price,
                "volume": 1.0,
            }
        )


@pytest.fixture
async def table(questdb_url: str, unique: str) -> AsyncIterator[str]:
    name = f"sdk_{unique}"
    yield name
    drop_table(questdb_url, name)


async def test_reference_snippet_backfills_inline_and_says_so_once(
    table: str, questdb_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    fetcher = LegacyFetcher()
    provider = EnhancedQuestDBProvider(
        dsn="postgresql://admin:quest@127.0.0.1:8812/qdb",
        table=table,
        fetcher=fetcher,
        strategy=DataAvailabilityStrategy.SEAMLESS,
        partial_ok=False,
        # The reference design's times are epoch seconds; seamfill never guesses a unit.
        settings=SeamlessSettings(questdb_url=questdb_url, time_unit="s"),
    )
    caplog.set_level(logging.INFO, logger="seamfill.sdk.backfill.inline")
    try:
        df = await provider.fetch(T0_S, T0_S + 120 * 60, node_id="BTC-USDT", interval=60)
        again = await provider.fetch(
            T0_S + 120 * 60, T0_S + 180 * 60, node_id="BTC-USDT", interval=60
        )
    finally:
        await provider.aclose()
    assert len(df) == 120 and df.attrs["seamless"].complete
    assert df["ts"].iloc[0].value // 1000 == T0 and df["close"].iloc[-1] == 100.0 + 119
    assert len(again) == 60 and count(questdb_url, table, "BTC-USDT") == 180
    assert fetcher.calls[0] == (T0_S, T0_S + 120 * 60, "BTC-USDT", 60)
    inline = [r for r in caplog.records if getattr(r, "event", "") == "seamless.backfill.inline"]
    assert len(inline) == 1
    line = json.loads(JsonFormatter().format(inline[0]))
    assert line["table"] == table and "no coordinator" in line["message"]


async def test_second_snippet_keywords_and_partial_ok(table: str, questdb_url: str) -> None:
    provider = EnhancedQuestDBProvider(
        dsn="postgresql://admin:quest@127.0.0.1:8812/qdb",
        fetcher=LegacyFetcher(),
        strategy=DataAvailabilityStrategy.SEAMLESS,
        sla=SLAPolicy(total_deadline_ms=60000, storage_deadline_ms=5000),
        conformance=ConformancePipeline.partial_ok(True),
        settings=SeamlessSettings(questdb_url=questdb_url, dataset=table, table=table),
    )
    try:
        df = await provider.fetch(T0, T0 + 30 * MIN, node_id="ETH-USDT", interval="1m")
        cov = await provider.coverage(T0, T0 + 60 * MIN, node_id="ETH-USDT", interval="1m")
        filled = await provider.fill_missing(T0, T0 + 60 * MIN, node_id="ETH-USDT", interval="1m")
    finally:
        await provider.aclose()
    assert provider.settings.sla.total_deadline_ms == 60000
    assert provider.settings.sla.storage_deadline_ms == 5000
    assert provider.settings.conformance_pipeline.partial_ok
    assert len(df) == 30
    assert cov.gaps and cov.gaps[0].start_us == T0 + 30 * MIN
    assert filled.complete
