"""The provider's own lease work (a fetcher of its own, ``take_leases``) obeys the heartbeat's
answer like a worker: a chunk whose jobs were paused or cancelled stops at once and is released,
a lost lease stops and is neither released nor completed.

Real coordinator (in-process, port 0, own key prefix, a short lease TTL so heartbeats come
often), real Redis and QuestDB. The provider's fetcher blocks on a gate, so a chunk is "in
progress" for as long as a test needs; only a heartbeat directive can end it early.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pandas as pd
import pytest

from seamfill.core.types import Dataset, Priority, Series, TimeRange
from seamfill.sdk import AsyncSeamlessProvider, SeamlessSettings, SyntheticFetcher
from seamfill.sdk.backfill._lease_helper import LeaseHelper
from seamfill.sdk.client._coordinator import CoordinatorClient
from tests.coordinator_fixtures import RunningCoordinator
from tests.sdk_support import MIN, T0, drop_table

pytestmark = pytest.mark.integration

CHUNK = TimeRange(T0, T0 + 60 * MIN)  # one chunk of the test dataset


class GatedFetcher:
    """Synthetic rows, but each fetch waits for ``gate``; records how each call ended."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.started: list[str] = []
        self.ended: list[tuple[str, str]] = []

    async def fetch(self, series: Series, range: TimeRange, dataset: Dataset) -> pd.DataFrame:
        self.started.append(series.symbol)
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.ended.append((series.symbol, "cancelled"))
            raise
        self.ended.append((series.symbol, "returned"))
        return await SyntheticFetcher().fetch(series, range, dataset)


async def until(cond: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll ``cond`` (sync or async) until it is truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
def co(
    coordinator_factory: Callable[..., RunningCoordinator], questdb_url: str
) -> Iterator[RunningCoordinator]:
    running = coordinator_factory(lease_ttl_ms=3000)
    yield running
    drop_table(questdb_url, running.config.datasets[running.dataset].table)


@pytest.fixture
async def client(co: RunningCoordinator) -> AsyncIterator[CoordinatorClient]:
    c = CoordinatorClient(co.address)
    yield c
    await c.close()


@pytest.fixture
async def provider(
    co: RunningCoordinator, questdb_url: str
) -> AsyncIterator[tuple[AsyncSeamlessProvider, GatedFetcher]]:
    fetcher = GatedFetcher()
    s = SeamlessSettings(
        coordinator_url=co.address,
        questdb_url=questdb_url,
        dataset=co.dataset,
        strategy="auto_backfill",
        cache_bytes=0,
        sla={"backfill_deadline_ms": 120_000, "total_deadline_ms": 180_000},
    )
    async with AsyncSeamlessProvider(s, fetcher=fetcher) as p:
        yield p, fetcher


async def job_of(client: CoordinatorClient, series: Series) -> str:
    jobs = await until(lambda: _jobs(client, series), f"a job for {series}", timeout=10.0)
    assert len(jobs) == 1, jobs
    return str(jobs[0].job_id)


async def _jobs(client: CoordinatorClient, series: Series) -> list[Any]:
    return [j for j in await client.list_jobs() if j.series == series]


async def test_paused_job_stops_the_providers_chunk_which_is_released(
    co: RunningCoordinator,
    client: CoordinatorClient,
    provider: tuple[AsyncSeamlessProvider, GatedFetcher],
) -> None:
    p, fetcher = provider
    series = Series(co.dataset, "PAUSE")
    read = asyncio.ensure_future(p.read(CHUNK.start_us, CHUNK.end_us, node_id="PAUSE"))
    await until(lambda: fetcher.started == ["PAUSE"], "the provider to start the chunk")
    job = await job_of(client, series)

    await client.pause_job(job)
    await until(lambda: fetcher.ended, "the chunk's fetch to end")
    assert fetcher.ended == [("PAUSE", "cancelled")]
    # Released, not left to run out: nobody holds it, nothing is covered or written.
    cov = await until(lambda: _no_lease(client, series), "the chunk to be handed back")
    assert cov.covered == () and cov.gaps == (CHUNK,)
    assert (await _stats(client, co)).lease_expiries == 0
    assert not read.done()

    fetcher.gate.set()
    await client.resume_job(job)
    r = await asyncio.wait_for(read, 60)
    assert r.meta.complete and len(r.frame) == 60
    assert fetcher.ended == [("PAUSE", "cancelled"), ("PAUSE", "returned")]
    stats = await _stats(client, co)
    assert stats.chunks_done == 1 and stats.lease_expiries == 0


async def test_cancelled_job_stops_the_providers_chunk_which_is_released(
    co: RunningCoordinator,
    client: CoordinatorClient,
    provider: tuple[AsyncSeamlessProvider, GatedFetcher],
) -> None:
    """The provider takes any chunk of its source; here one of another job (queued first and
    first by name), which is cancelled while the provider works on it."""
    p, fetcher = provider
    other = Series(co.dataset, "AAA-OTHER")
    queued = await client.ensure_range(other, CHUNK, Priority.INTERACTIVE)
    assert queued is not None
    read = asyncio.ensure_future(p.read(CHUNK.start_us, CHUNK.end_us, node_id="ZZZ-MINE"))
    await until(lambda: fetcher.started, "the provider to start a chunk")
    assert fetcher.started == ["AAA-OTHER"]

    await client.cancel_job(queued.job_id)
    await until(lambda: fetcher.ended, "the chunk's fetch to end")
    assert fetcher.ended == [("AAA-OTHER", "cancelled")]
    # Released, so dropped (no job wants it): nothing leased, covered or written for it.
    cov = await until(lambda: _no_lease(client, other), "the chunk to be handed back")
    assert cov.covered == () and cov.queued == ()
    assert (await _stats(client, co)).lease_expiries == 0

    fetcher.gate.set()
    r = await asyncio.wait_for(read, 60)
    assert r.meta.complete and len(r.frame) == 60
    assert fetcher.ended == [("AAA-OTHER", "cancelled"), ("ZZZ-MINE", "returned")]
    cov = await client.get_coverage(other, CHUNK)
    assert cov.covered == () and cov.leased == () and cov.queued == ()
    stats = await _stats(client, co)
    assert stats.chunks_done == 1 and stats.lease_expiries == 0


async def test_lost_lease_stops_the_providers_chunk_which_is_not_completed(
    co: RunningCoordinator,
    client: CoordinatorClient,
    provider: tuple[AsyncSeamlessProvider, GatedFetcher],
) -> None:
    """The lease is taken away (handed back with its token, as a reclaim would): the next
    heartbeat says LOST, the chunk stops, and the provider works it again under a new lease."""
    p, fetcher = provider
    read = asyncio.ensure_future(p.read(CHUNK.start_us, CHUNK.end_us, node_id="LOST"))
    await until(lambda: fetcher.started == ["LOST"], "the provider to start the chunk")
    [lease] = [x for x in await client.list_leases(co.dataset) if x.worker_id.startswith("sdk-")]
    await client.release(lease.worker_id, lease.lease_id, lease.token)

    await until(lambda: fetcher.ended, "the chunk's fetch to end")
    assert fetcher.ended == [("LOST", "cancelled")]
    await until(lambda: len(fetcher.started) == 2, "the provider to take the chunk again")
    [again] = [x for x in await client.list_leases(co.dataset) if x.worker_id.startswith("sdk-")]
    assert again.token != lease.token

    fetcher.gate.set()
    r = await asyncio.wait_for(read, 60)
    assert r.meta.complete and len(r.frame) == 60
    assert fetcher.ended == [("LOST", "cancelled"), ("LOST", "returned")]
    # Only the second lease completed the chunk; the lost one was never completed.
    stats = await _stats(client, co)
    assert stats.chunks_done == 1 and stats.lease_expiries == 0


async def _stats(client: CoordinatorClient, co: RunningCoordinator) -> Any:
    stats = await client.get_stats()
    return next(d for d in stats.datasets if d.dataset == co.dataset)


async def _no_lease(client: CoordinatorClient, series: Series) -> Any:
    cov = await client.get_coverage(series, CHUNK)
    return cov if not cov.leased else None


async def test_a_drained_provider_takes_no_more_leases(
    co: RunningCoordinator, client: CoordinatorClient
) -> None:
    """An operator's drain of the provider's worker id ends its lease work; the chunk stays
    queued for the fleet."""
    fetcher = GatedFetcher()
    worker = "provider-to-drain"
    await client.acquire(worker, ["synthetic"])  # registers the worker id
    await client.drain_worker(worker)
    series = Series(co.dataset, "DRAINED")
    assert await client.ensure_range(series, CHUNK, Priority.INTERACTIVE) is not None
    dataset = co.config.datasets[co.dataset]
    helper = LeaseHelper(client, sink=None, worker_id=worker)
    await asyncio.wait_for(helper.run(dataset, fetcher, asyncio.Event()), 20)
    assert fetcher.started == []
    cov = await client.get_coverage(series, CHUNK)
    assert cov.queued == (CHUNK,) and cov.leased == () and cov.covered == ()
