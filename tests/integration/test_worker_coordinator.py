"""The worker loop in this process against a real coordinator (Redis) and a real QuestDB."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pandas as pd
import pytest

from seamfill.core.types import Dataset, JobState, Series, TimeRange
from seamfill.sdk.backfill.sink import QuestDBSink
from seamfill.sdk.client._coordinator import CoordinatorClient
from seamfill.worker import metrics
from seamfill.worker.config import WorkerConfig
from seamfill.worker.fetchers.ccxt import CcxtFetcher
from seamfill.worker.loop import Worker
from tests.coordinator_fixtures import RunningCoordinator
from tests.unit.test_worker_ccxt import RecordedSession

pytestmark = pytest.mark.integration

MIN = 60_000_000
T0 = 1_704_067_200_000_000


class Slow:
    async def fetch(self, series: Series, range: TimeRange, dataset: Dataset) -> pd.DataFrame:
        await asyncio.sleep(60)
        raise AssertionError("unreachable")


@pytest.fixture
async def sink(questdb_url: str, unique: str) -> AsyncIterator[QuestDBSink]:
    s = QuestDBSink(questdb_url)
    yield s
    await s.exec(f'DROP TABLE IF EXISTS "wcoord_{unique}"')
    await s.aclose()


async def _until(cond: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = await cond() if asyncio.iscoroutinefunction(cond) else cond()
        if got:
            return got
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def _count(metric: Any, *labels: str) -> float:
    value: float = metric.labels(*labels)._value.get()
    return value


async def test_cancelling_the_job_stops_the_chunk_and_releases_it(
    coordinator_factory: Callable[..., RunningCoordinator],
    sink: QuestDBSink,
    unique: str,
    questdb_url: str,
) -> None:
    ds = "wtest.slow"
    coord = coordinator_factory(
        {ds: {"table": f"wcoord_{unique}", "source": "slow", "interval": "1m", "chunk_bars": 60}},
        lease_ttl_ms=900,  # heartbeats every 300 ms
    )
    client = CoordinatorClient(coord.address)
    config = WorkerConfig(
        coordinator=coord.address,
        worker_id=f"w-{unique}",
        concurrency=2,
        acquire_wait_ms=200,
        questdb_url=questdb_url,
    )
    worker = Worker(config, client, sink, fetchers={"slow": lambda **_: Slow()})
    released = _count(metrics.CHUNKS, ds, "released")
    run = asyncio.create_task(worker.run())
    try:
        job = await client.ensure_range(Series(ds, "X"), TimeRange(T0, T0 + 60 * MIN))
        await _until(lambda: len(worker.held) == 1)
        assert job is not None
        await client.cancel_job(job.job_id)
        await _until(lambda: not worker.held)
        assert _count(metrics.CHUNKS, ds, "released") == released + 1
        assert _count(metrics.CHUNKS, ds, "completed") == 0
    finally:
        worker.stop()
        await asyncio.wait_for(run, 10)
        await client.close()


async def test_ccxt_pages_take_tokens_from_the_fleet_wide_rate_limit(
    coordinator_factory: Callable[..., RunningCoordinator],
    sink: QuestDBSink,
    unique: str,
    questdb_url: str,
) -> None:
    ds = "wtest.binance_1m"
    coord = coordinator_factory(
        {
            ds: {
                "table": f"wcoord_{unique}",
                "source": "ccxt:binance",
                "interval": "1m",
                "chunk_bars": 50,
            }
        },
        sources={"ccxt:binance": {"rate_per_second": 10, "burst": 1}},
    )
    client = CoordinatorClient(coord.address)
    config = WorkerConfig(
        coordinator=coord.address,
        worker_id=f"w-{unique}",
        concurrency=2,
        acquire_wait_ms=200,
        questdb_url=questdb_url,
    )
    sessions: list[RecordedSession] = []

    def make(**_: Any) -> CcxtFetcher:
        sessions.append(RecordedSession())
        return CcxtFetcher(session=sessions[-1], enableRateLimit=False, page_limit=10)

    worker = Worker(config, client, sink, fetchers={"ccxt": make})
    waits = _count(metrics.RATE_LIMIT_WAITS, "ccxt")
    run = asyncio.create_task(worker.run())
    try:
        job = await client.ensure_range(Series(ds, "BTC/USDT"), TimeRange(T0, T0 + 100 * MIN))
        assert job is not None
        job_id = job.job_id

        async def done() -> bool:
            return (await client.get_job(job_id)).state is JobState.DONE

        await _until(done, 30)
    finally:
        worker.stop()
        await asyncio.wait_for(run, 10)
        await client.close()
    # 2 chunks x 5 pages, against a bucket of 1 token refilled 10 times a second: most pages
    # had to wait for the fleet-wide limit.
    assert sum(len(s.klines_calls) for s in sessions) == 10
    assert _count(metrics.RATE_LIMIT_WAITS, "ccxt") - waits >= 5
    assert (
        await sink.count(
            Dataset(ds, f"wcoord_{unique}", "ccxt:binance", MIN),
            "BTC/USDT",
            TimeRange(T0, T0 + 100 * MIN),
        )
        == 100
    )
