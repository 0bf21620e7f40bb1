"""The provider against the fleet as real processes: a ``seamfill coordinator serve`` and
``seamfill worker run`` workers over the real Redis and QuestDB. Includes the setup guide's
snippets, run as written but for their imports."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from seamfill.core.types import Dataset, Series, TimeRange

# The snippets' imports, changed to seamfill's (the only change the guide's code needs).
from seamfill.sdk import (
    ConformancePipeline,
    DataAvailabilityStrategy,
    EnhancedQuestDBProvider,
    SeamlessProvider,
    SeamlessSettings,
    SLAPolicy,
    SyntheticFetcher,
)
from seamfill.sdk.backfill.fetchers import Fetcher
from seamfill.sdk.read import live as seamfill_live
from tests.e2e.worker_support import Fleet

pytestmark = pytest.mark.e2e

MIN = 60_000_000
T0 = 1_704_067_200_000_000


def spec(table: str) -> dict[str, object]:
    return {
        "table": table,
        "source": "scripted",
        "interval": "1m",
        "chunk_bars": 60,
        "settle": "0s",
        "kind": "bars",
    }


@pytest.fixture
def fleet(
    tmp_path: Path, redis_url: str, questdb_url: str, key_prefix: str, unique: str
) -> Iterator[Fleet]:
    f = Fleet(tmp_path, redis_url, questdb_url, key_prefix)
    f.start_coordinator({"e2e.bars": spec(f"sdk_e2e_{unique}"), "market_data": spec("market_data")})
    yield f
    f.close()


def settings(fleet: Fleet, questdb_url: str, **kw: object) -> SeamlessSettings:
    return SeamlessSettings(
        coordinator_url=fleet.address, questdb_url=questdb_url, dataset="e2e.bars", **kw
    )  # type: ignore[arg-type]


def test_auto_backfill_on_an_empty_series_returns_what_the_fleet_filled(
    fleet: Fleet, questdb_url: str
) -> None:
    fleet.start_worker("w1")
    fleet.start_worker("w2")
    with SeamlessProvider(settings(fleet, questdb_url, strategy="auto_backfill")) as p:
        df = p.fetch(T0, T0 + 300 * MIN, node_id="BTC-USDT", interval=60)
    meta = df.attrs["seamless"]
    assert len(df) == 300 and meta.complete and not meta.downgraded and meta.job_id
    assert df["ts"].iloc[-1].value // 1000 == T0 + 299 * MIN
    assert fleet.gaps("e2e.bars", "BTC-USDT", T0, T0 + 300 * MIN) == []


def test_seamless_downgrades_at_300ms_with_a_slow_fleet(fleet: Fleet, questdb_url: str) -> None:
    fleet.start_worker("slow", env={"SEAMFILL_TEST_FETCH_DELAY": "10"})
    s = settings(
        fleet,
        questdb_url,
        strategy="seamless",
        sla={"backfill_deadline_ms": 300, "total_deadline_ms": 30_000},
    )
    with SeamlessProvider(s) as p:
        started = time.monotonic()
        df = p.fetch(T0, T0 + 120 * MIN, node_id="SLOW-1", interval=60)
        elapsed = time.monotonic() - started
    meta = df.attrs["seamless"]
    assert meta.downgraded and "backfill deadline" in meta.reason
    assert meta.gaps and meta.gaps[0].start_us == T0
    # Cut off at the deadline (the provider's measure of the wait), long before the fleet.
    assert meta.timings_ms["backfill"] < 300 + 700
    assert elapsed < 10.0


# -- the setup guide's snippets --------------------------------------------------------------


class HistoricalFetcher(Fetcher):
    """A user's fetcher: seamfill's interface, synthetic rows."""

    async def fetch(self, series: Series, range: TimeRange, dataset: Dataset) -> pd.DataFrame:
        return await SyntheticFetcher(seed=1).fetch(series, range, dataset)


class LiveFetcher(seamfill_live.LiveFetcher):
    """A user's live feed: the forming bars, from the same synthetic source."""

    async def fetch(self, series: Series, range: TimeRange, dataset: Dataset) -> pd.DataFrame:
        return await SyntheticFetcher(seed=1).fetch(series, range, dataset)


async def test_the_guides_snippets_run_against_the_fleet(
    fleet: Fleet, questdb_url: str, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "seamfill.yaml"
    config.write_text(
        "seamless:\n"
        f"  coordinator_url: grpc://{fleet.address}"
        "   # also host:port, grpcs://…, https://… (TLS)\n"
        "  publish_fingerprint: true\n"
        "  preview_fingerprint: false\n"
        "  early_fingerprint: false\n"
    )
    monkeypatch.setenv("SEAMFILL_CONFIG", str(config))
    monkeypatch.setenv("SEAMFILL_QUESTDB_URL", questdb_url)
    fleet.start_worker("w1")

    provider = EnhancedQuestDBProvider(
        dsn="postgresql://admin:quest@127.0.0.1:8812/qdb",
        table="market_data",
        fetcher=HistoricalFetcher(),
        live_fetcher=LiveFetcher(),
        strategy=DataAvailabilityStrategy.SEAMLESS,
        partial_ok=False,
    )
    symbol = f"SNIP-{unique}"
    now = time.time_ns() // 1000
    try:
        df = await provider.fetch(now - 90 * 60_000_000, now, node_id=symbol, interval=60)
    finally:
        await provider.aclose()
    meta = df.attrs["seamless"]
    assert provider.settings.coordinator is not None and provider.settings.publish_fingerprint
    assert len(df) >= 89 and df["ts"].is_unique and df["ts"].is_monotonic_increasing
    assert meta.complete and not meta.degraded and meta.live_rows >= 1

    provider = EnhancedQuestDBProvider(
        dsn="postgresql://admin:quest@127.0.0.1:8812/qdb",
        fetcher=HistoricalFetcher(),
        strategy=DataAvailabilityStrategy.SEAMLESS,
        sla=SLAPolicy(total_deadline_ms=60000, storage_deadline_ms=5000),
        conformance=ConformancePipeline.partial_ok(True),
    )
    try:
        df = await provider.fetch(T0, T0 + 120 * MIN, node_id=f"market_data/{symbol}", interval=60)
        await asyncio.sleep(0)
    finally:
        await provider.aclose()
    assert len(df) == 120 and df.attrs["seamless"].complete
    assert provider.settings.conformance.partial_ok
