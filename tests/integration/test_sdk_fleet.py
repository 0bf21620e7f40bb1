"""The provider with a real coordinator (in-process, port 0, own Redis key prefix) and real
QuestDB. Chunks are filled by a test worker that plays the worker's part through the client API
(acquire → run_chunk → complete), or by the provider's own fetcher taking leases."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from seamfill.core.types import Series, TimeRange
from seamfill.sdk import (
    AsyncSeamlessProvider,
    CoordinatorUnavailable,
    MissingData,
    SeamlessProvider,
    SeamlessSettings,
    SyntheticFetcher,
)
from seamfill.sdk.backfill.chunk import run_chunk
from seamfill.sdk.backfill.sink import QuestDBSink
from seamfill.sdk.client._coordinator import CoordinatorClient
from tests.coordinator_fixtures import RunningCoordinator
from tests.sdk_support import MIN, T0, drop_table

pytestmark = pytest.mark.integration


class TestWorker:
    """A worker played through the client API; ``delay`` slows every chunk."""

    __test__ = False

    def __init__(self, address: str, questdb_url: str, delay: float = 0.0) -> None:
        self.client = CoordinatorClient(address)
        self.sink = QuestDBSink(questdb_url)
        self.fetcher = SyntheticFetcher()
        self.delay = delay
        self.chunks = 0
        self.stop = asyncio.Event()

    async def run(self) -> None:
        # Stopped by the event, not by cancellation: an Acquire cut off mid-poll would leave the
        # coordinator's side of it to be torn down while the test shuts the server.
        self.stop.clear()
        while not self.stop.is_set():
            got = await self.client.acquire("test-worker", ["synthetic"], max=4, wait_ms=100)
            for lease in got.leases:
                if self.delay:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stop.wait(), self.delay)
                if self.stop.is_set():
                    await self.client.release("test-worker", lease.lease_id, lease.token)
                    continue
                rows = await run_chunk(
                    self.fetcher, self.sink, lease.chunk.series, lease.chunk.range, lease.dataset
                )
                await self.client.complete("test-worker", lease.lease_id, lease.token, rows)
                self.chunks += 1

    async def fill(self, series: Series, rng: TimeRange) -> None:
        """Make ``rng`` covered: ensure it and work its chunks until the job is done."""
        job = await self.client.ensure_range(series, rng)
        async with self.running():
            if job is not None:
                async with contextlib.aclosing(self.client.watch_job(job.job_id)) as stream:
                    async for j in stream:
                        if j.finished:
                            break

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        task = asyncio.ensure_future(self.run())
        try:
            yield
        finally:
            self.stop.set()
            await task

    async def aclose(self) -> None:
        await self.sink.aclose()
        await self.client.close()


@pytest.fixture
async def worker(coordinator: RunningCoordinator, questdb_url: str) -> AsyncIterator[TestWorker]:
    w = TestWorker(coordinator.address, questdb_url)
    yield w
    await w.aclose()
    drop_table(questdb_url, coordinator.config.datasets[coordinator.dataset].table)


def settings(coordinator: RunningCoordinator, questdb_url: str, **kw: Any) -> SeamlessSettings:
    return SeamlessSettings(
        coordinator_url=coordinator.address,
        questdb_url=questdb_url,
        dataset=coordinator.dataset,
        **kw,
    )


async def test_covered_range_reads_back_every_bar(
    coordinator: RunningCoordinator, worker: TestWorker, questdb_url: str
) -> None:
    series = Series(coordinator.dataset, "BTC")
    await worker.fill(series, TimeRange(T0, T0 + 100 * MIN))
    await worker.fill(series, TimeRange(T0 + 100 * MIN, T0 + 160 * MIN))
    async with AsyncSeamlessProvider(settings(coordinator, questdb_url, strategy="fail_fast")) as p:
        r = await p.read(T0, T0 + 100 * MIN, node_id="BTC")
        assert len(r.frame) == 100 and r.meta.complete and not r.meta.degraded
        assert r.frame["ts"].iloc[0].value // 1000 == T0
        assert r.frame["ts"].iloc[-1].value // 1000 == T0 + 99 * MIN
        both = await p.read(T0, T0 + 160 * MIN, node_id=f"{coordinator.dataset}/BTC")
        assert len(both.frame) == 160 and both.frame["ts"].is_unique
        assert both.meta.covered == (TimeRange(T0, T0 + 160 * MIN),)
        assert (both.frame["ts"].astype("int64") == T0 + 100 * MIN).sum() == 1


async def test_fail_fast_raises_with_gaps_and_enqueues_nothing(
    coordinator: RunningCoordinator, worker: TestWorker, questdb_url: str
) -> None:
    series = Series(coordinator.dataset, "ETH")
    await worker.fill(series, TimeRange(T0, T0 + 60 * MIN))
    async with AsyncSeamlessProvider(settings(coordinator, questdb_url, strategy="fail_fast")) as p:
        with pytest.raises(MissingData) as info:
            await p.read(T0, T0 + 120 * MIN, node_id="ETH")
    assert info.value.gaps == [TimeRange(T0 + 60 * MIN, T0 + 120 * MIN)]
    cov = await worker.client.get_coverage(series, TimeRange(T0, T0 + 120 * MIN))
    assert cov.queued == () and cov.leased == ()
    assert [
        j
        for j in await worker.client.list_jobs()
        if j.series == series and j.range.end_us > T0 + 60 * MIN
    ] == []


async def test_auto_backfill_returns_the_complete_frame(
    coordinator: RunningCoordinator, worker: TestWorker, questdb_url: str
) -> None:
    async with (
        worker.running(),
        AsyncSeamlessProvider(settings(coordinator, questdb_url, strategy="auto_backfill")) as p,
    ):
        r = await p.read(T0, T0 + 150 * MIN, node_id="SOL")
    assert len(r.frame) == 150 and r.meta.complete and r.meta.job_id
    assert worker.chunks == 3


async def test_partial_fill_returns_at_once_with_a_job_then_completes(
    coordinator: RunningCoordinator, worker: TestWorker, questdb_url: str
) -> None:
    series = Series(coordinator.dataset, "ADA")
    await worker.fill(series, TimeRange(T0, T0 + 60 * MIN))
    async with AsyncSeamlessProvider(
        settings(coordinator, questdb_url, strategy="partial_fill", cache_bytes=0)
    ) as p:
        first = await p.read(T0, T0 + 180 * MIN, node_id="ADA")
        assert len(first.frame) == 60 and first.meta.job_id
        assert first.meta.gaps == (TimeRange(T0 + 60 * MIN, T0 + 180 * MIN),)
        job = await worker.client.get_job(first.meta.job_id)
        assert job.series == series and not job.finished
        async with worker.running():
            for _ in range(200):
                later = await p.read(T0, T0 + 180 * MIN, node_id="ADA")
                if later.meta.complete:
                    break
                await asyncio.sleep(0.05)
    assert later.meta.complete and len(later.frame) == 180


async def test_seamless_downgrades_at_a_300ms_backfill_deadline(
    coordinator: RunningCoordinator, questdb_url: str
) -> None:
    slow = TestWorker(coordinator.address, questdb_url, delay=5.0)
    s = settings(
        coordinator,
        questdb_url,
        strategy="seamless",
        sla={"backfill_deadline_ms": 300, "total_deadline_ms": 30_000},
    )
    try:
        async with slow.running(), AsyncSeamlessProvider(s) as p:
            started = time.monotonic()
            r = await p.read(T0, T0 + 120 * MIN, node_id="XRP")
            elapsed = time.monotonic() - started
    finally:
        await slow.aclose()
    assert r.meta.downgraded and "backfill deadline" in r.meta.reason
    assert r.meta.gaps == (TimeRange(T0, T0 + 120 * MIN),) and r.meta.job_id
    # The wait was cut off at its deadline (the provider's own measure of the stage), long
    # before the slow fleet could have answered.
    assert r.meta.timings_ms["backfill"] < 300 + 700
    assert elapsed < 5.0


async def test_provider_fetcher_fills_gaps_by_taking_leases(
    coordinator: RunningCoordinator, worker: TestWorker, questdb_url: str
) -> None:
    s = settings(coordinator, questdb_url, strategy="auto_backfill")
    async with AsyncSeamlessProvider(s, fetcher=SyntheticFetcher()) as p:
        r = await p.read(T0, T0 + 120 * MIN, node_id="DOT")
    assert r.meta.complete and len(r.frame) == 120 and worker.chunks == 0
    stats = await worker.client.get_stats()
    assert stats is not None


async def test_fingerprints_are_stable_and_published(
    coordinator: RunningCoordinator, worker: TestWorker, questdb_url: str
) -> None:
    series = Series(coordinator.dataset, "LINK")
    await worker.fill(series, TimeRange(T0, T0 + 60 * MIN))
    s = settings(
        coordinator, questdb_url, strategy="fail_fast", publish_fingerprint=True, cache_bytes=0
    )
    async with AsyncSeamlessProvider(s) as p:
        a = await p.read(T0, T0 + 60 * MIN, node_id="LINK")
        b = await p.read(T0, T0 + 60 * MIN, node_id="LINK")
    assert a.meta.fingerprint is not None and b.meta.fingerprint is not None
    assert a.meta.fingerprint.sha256 == b.meta.fingerprint.sha256
    published = await worker.client.get_fingerprints(series)
    assert published and published[0].sha256 == a.meta.fingerprint.sha256
    assert published[0].rows == 60 and published[0].published_by == "seamfill-sdk"


async def test_coordinator_down_serves_covered_storage_degraded(
    coordinator: RunningCoordinator, worker: TestWorker, questdb_url: str
) -> None:
    series = Series(coordinator.dataset, "AVAX")
    await worker.fill(series, TimeRange(T0, T0 + 60 * MIN))
    s = settings(
        coordinator,
        questdb_url,
        strategy="seamless",
        sla={"storage_deadline_ms": 1000, "total_deadline_ms": 5000},
    )
    async with AsyncSeamlessProvider(s) as p:
        warm = await p.read(T0, T0 + 60 * MIN, node_id="AVAX")
        assert not warm.meta.degraded
        coordinator.stop()
        started = time.monotonic()
        r = await p.read(T0, T0 + 90 * MIN, node_id="AVAX")
        assert time.monotonic() - started < 5.0
        assert r.meta.degraded and r.meta.downgraded and "coordinator" in r.meta.reason
        assert len(r.frame) == 60 and r.meta.gaps == (TimeRange(T0 + 60 * MIN, T0 + 90 * MIN),)
    ff = s.with_overrides(strategy="fail_fast")
    async with AsyncSeamlessProvider(ff) as p:
        p._datasets[series.dataset] = coordinator.config.datasets[series.dataset]
        with pytest.raises(CoordinatorUnavailable):
            await p.read(T0, T0 + 60 * MIN, node_id="AVAX")


def test_settings_from_yaml_drive_the_sync_provider(
    coordinator: RunningCoordinator, questdb_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "seamfill.yaml"
    path.write_text(
        "seamless:\n"
        f"  coordinator_url: grpc://{coordinator.address}   # also host:port, grpcs://, https://\n"
        "  publish_fingerprint: true\n  preview_fingerprint: false\n  early_fingerprint: false\n"
        f"  questdb_url: {questdb_url}\n  dataset: {coordinator.dataset}\n"
        "  strategy: partial_fill\n"
    )
    s = SeamlessSettings.from_yaml(path, env={"SEAMFILL_STRATEGY": "fail_fast"})
    assert s.publish_fingerprint and s.strategy.value == "fail_fast"
    with SeamlessProvider(s) as p:
        with pytest.raises(MissingData):
            p.fetch(T0, T0 + 60 * MIN, node_id="NEAR", interval=60)
        cov = p.coverage(T0, T0 + 60 * MIN, node_id="NEAR")
    assert cov.gaps == (TimeRange(T0, T0 + 60 * MIN),)
