"""Two replicas, 32 concurrent acquirers, 5,000 chunks: every grant unique per lease generation,
every chunk completed once, coverage whole. A replica killed mid-run loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from seamfill.core import errors
from seamfill.core.types import JobState, Series, TimeRange
from seamfill.sdk.client._coordinator import CoordinatorClient
from tests.coordinator_fixtures import (
    TEST_DATASET,
    RunningCoordinator,
    start_coordinator_process,
    test_dataset_spec,
    write_config,
)

HOUR = 3_600_000_000
pytestmark = pytest.mark.integration


class Ledger:
    def __init__(self) -> None:
        self.grants: list[tuple[str, int]] = []
        self.completed: Counter[str] = Counter()
        self.released = 0


async def _worker(
    addresses: list[str], name: str, ledger: Ledger, stop: asyncio.Event, rng: random.Random
) -> None:
    clients = [CoordinatorClient(a, timeout_s=10) for a in addresses]
    try:
        i = 0
        while not stop.is_set():
            c = clients[i % len(clients)]
            i += 1
            try:
                got = await c.acquire(name, ["synthetic"], max=4, wait_ms=100)
            except errors.CoordinatorUnavailable:
                await asyncio.sleep(0.05)
                continue
            for lease in got.leases:
                ledger.grants.append((lease.lease_id, lease.token))
                try:
                    if rng.random() < 0.05:
                        await c.release(name, lease.lease_id, lease.token)
                        ledger.released += 1
                        continue
                    await c.complete(name, lease.lease_id, lease.token, rows=60)
                    ledger.completed[lease.lease_id] += 1
                except errors.CoordinatorUnavailable:
                    # The call may or may not have landed; the lease expires or is done.
                    continue
                except errors.LeaseLost:
                    continue
    finally:
        for c in clients:
            await c.close()


async def _run_fleet(
    addresses: list[str],
    n: int,
    until: Callable[[], bool],
) -> Ledger:
    ledger = Ledger()
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(_worker(addresses, f"w{i}", ledger, stop, random.Random(i)))
        for i in range(n)
    ]
    try:
        while not until():
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    return ledger


def _check(ledger: Ledger, chunk_ids: set[str]) -> None:
    assert len(set(ledger.grants)) == len(ledger.grants), "a lease generation was granted twice"
    tokens: dict[str, list[int]] = {}
    for lid, tok in ledger.grants:
        tokens.setdefault(lid, []).append(tok)
    assert all(t == sorted(set(t)) for t in tokens.values()), "tokens must grow per chunk"
    assert set(ledger.completed) == chunk_ids
    assert max(ledger.completed.values()) == 1


async def test_two_replicas_32_acquirers_5000_chunks(
    coordinator_factory: Callable[..., RunningCoordinator],
    tmp_path: Path,
    unique: str,
    key_prefix: str,
    redis_url: str,
) -> None:
    a = coordinator_factory()
    cfg = write_config(
        tmp_path / "c.yaml",
        redis_url,
        key_prefix,
        {TEST_DATASET: test_dataset_spec(f"bars_{unique}")},
    )
    b = start_coordinator_process(cfg)
    try:
        async with CoordinatorClient(a.address) as c:
            jobs, ids = [], set()
            for k in range(5):
                s = Series(a.dataset, f"S{k}")
                job = await c.ensure_range(s, TimeRange(0, 1000 * HOUR))
                assert job is not None and job.progress.chunks_total == 1000
                jobs.append(job.job_id)
                ids |= {f"{a.dataset}/S{k}@{i * HOUR}" for i in range(1000)}
            done = {"all": False}

            async def watch() -> None:
                while not done["all"]:
                    states = [(await c.get_job(j)).state for j in jobs]
                    done["all"] = all(st is JobState.DONE for st in states)
                    await asyncio.sleep(0.1)

            watcher = asyncio.create_task(watch())
            ledger = await _run_fleet([a.address, b.address], 32, lambda: done["all"])
            await watcher
            _check(ledger, ids)
            for k in range(5):
                cov = await c.get_coverage(Series(a.dataset, f"S{k}"), TimeRange(0, 1000 * HOUR))
                assert cov.covered == (TimeRange(0, 1000 * HOUR),)
            st = await c.get_stats()
            assert (st.datasets[0].queued, st.datasets[0].leased) == (0, 0)
            assert st.datasets[0].chunks_done == 5000
    finally:
        assert b.stop() == 0


async def test_replica_killed_mid_run_loses_nothing(
    tmp_path: Path, unique: str, key_prefix: str, redis_url: str
) -> None:
    cfg = write_config(
        tmp_path / "c.yaml",
        redis_url,
        key_prefix,
        {TEST_DATASET: test_dataset_spec(f"bars_{unique}")},
        lease_ttl_ms=500,
    )
    proc = start_coordinator_process(cfg)
    try:
        async with CoordinatorClient(proc.address) as c:
            s = Series(TEST_DATASET, "R")
            job = await c.ensure_range(s, TimeRange(0, 300 * HOUR))
            assert job is not None
            state = {"restarted": False, "done": False}

            async def chaos() -> None:
                nonlocal proc
                await asyncio.sleep(0.3)
                port = proc.port
                proc.kill()  # kill -9 mid-run, then a new replica on the same address
                proc = start_coordinator_process(cfg, extra_args=("--port", str(port)))
                state["restarted"] = True

            async def watch() -> None:
                while not state["done"]:
                    with contextlib.suppress(errors.CoordinatorUnavailable):
                        state["done"] = (await c.get_job(job.job_id)).state is JobState.DONE
                    await asyncio.sleep(0.1)

            tasks = [asyncio.create_task(chaos()), asyncio.create_task(watch())]
            ledger = await _run_fleet([proc.address], 8, lambda: state["done"])
            await asyncio.gather(*tasks)
            assert state["restarted"]
            cov = await c.get_coverage(s, TimeRange(0, 300 * HOUR))
            assert cov.covered == (TimeRange(0, 300 * HOUR),)
            assert len(set(ledger.grants)) == len(ledger.grants)
            assert max(ledger.completed.values()) == 1
    finally:
        proc.stop()
