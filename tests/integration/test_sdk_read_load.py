"""1, 2, 4, 8 and 16 concurrent readers of covered series, as threads and as processes, against
the `make services` QuestDB and one with the server's stock limit of 2 concurrent exports: no read
fails because the server is busy, and each read says how it reached storage."""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any

import pytest

from seamfill.core.types import Series, TimeRange
from tests.coordinator_fixtures import RunningCoordinator
from tests.integration.test_sdk_fleet import TestWorker
from tests.sdk_readers import reader_pool, run_readers
from tests.sdk_support import MIN, T0, drop_table

pytestmark = pytest.mark.integration

LEVELS = (1, 2, 4, 8, 16)
READS_PER_LEVEL = 200
BARS = 60


async def _covered(coordinator: RunningCoordinator, questdb_url: str, symbol: str) -> None:
    w = TestWorker(coordinator.address, questdb_url)
    try:
        await w.fill(Series(coordinator.dataset, symbol), TimeRange(T0, T0 + BARS * MIN))
    finally:
        await w.aclose()


def _settings(coordinator: RunningCoordinator, url: str, dsn: str) -> dict[str, Any]:
    return {
        "coordinator_url": coordinator.address,
        "questdb_url": url,
        "questdb_dsn": dsn,
        "dataset": coordinator.dataset,
        "strategy": "fail_fast",
        "cache_bytes": 0,
    }


async def _run(
    coordinator: RunningCoordinator, url: str, dsn: str, symbol: str, *, processes: bool
) -> None:
    await _covered(coordinator, url, symbol)
    kw = _settings(coordinator, url, dsn)
    try:
        with reader_pool(max(LEVELS), processes=processes) as pool:
            for n in LEVELS:
                _level(pool, n, kw, symbol)
    finally:
        drop_table(url, coordinator.config.datasets[coordinator.dataset].table)


def _level(pool: Executor, n: int, kw: dict[str, Any], symbol: str) -> None:
    report = run_readers(pool, n, READS_PER_LEVEL, kw, symbol, (T0, T0 + BARS * MIN), BARS)
    assert report.errors == [], (n, len(report.errors), report.errors[:3])
    assert report.reads >= READS_PER_LEVEL and report.rows == report.reads * BARS
    # Every read says how it reached storage.
    assert sum(report.paths.values()) == report.reads
    assert set(report.paths) <= {"http", "pgwire"}, report.paths
    print(f"{n} readers: {dict(report.paths)}, {report.retried} retried")


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
async def test_concurrent_readers_never_fail_on_a_stock_limit_questdb(
    coordinator: RunningCoordinator, stock_questdb: tuple[str, str], processes: bool
) -> None:
    url, dsn = stock_questdb
    await _run(coordinator, url, dsn, "a,b 'q' \"x\"\n✓", processes=processes)


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
async def test_concurrent_readers_never_fail_on_the_services_questdb(
    coordinator: RunningCoordinator, questdb_url: str, questdb_dsn: str, processes: bool
) -> None:
    await _run(coordinator, questdb_url, questdb_dsn, "LOAD-USDT", processes=processes)
