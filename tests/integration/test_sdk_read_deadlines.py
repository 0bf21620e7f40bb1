"""SEAMLESS and AUTO_BACKFILL under tight total deadlines (DESIGN §6), with a real coordinator
and a fleet too slow to fill the gap in time: the covered part comes back downgraded, and a breach
names the deadline that fired first."""

from __future__ import annotations

import pytest

from seamfill.core.types import Series, TimeRange
from seamfill.sdk import AsyncSeamlessProvider, SeamlessSLAExceeded
from tests.coordinator_fixtures import RunningCoordinator
from tests.integration.test_sdk_fleet import TestWorker, settings
from tests.sdk_support import MIN, T0, drop_table

pytestmark = pytest.mark.integration


async def _fill(coordinator: RunningCoordinator, questdb_url: str, symbol: str) -> None:
    w = TestWorker(coordinator.address, questdb_url)
    try:
        await w.fill(Series(coordinator.dataset, symbol), TimeRange(T0, T0 + 60 * MIN))
    finally:
        await w.aclose()


async def test_seamless_total_200ms_returns_covered_part_downgraded(
    coordinator: RunningCoordinator, questdb_url: str
) -> None:
    await _fill(coordinator, questdb_url, "TIGHT")
    slow = TestWorker(coordinator.address, questdb_url, delay=5.0)
    s = settings(coordinator, questdb_url, strategy="seamless", sla={"total_deadline_ms": 200})
    try:
        async with slow.running(), AsyncSeamlessProvider(s) as p:
            r = await p.read(T0, T0 + 120 * MIN, node_id="TIGHT")
    finally:
        await slow.aclose()
        drop_table(questdb_url, coordinator.config.datasets[coordinator.dataset].table)
    assert r.meta.downgraded and "total deadline" in r.meta.reason
    assert len(r.frame) == 60 and r.meta.covered == (TimeRange(T0, T0 + 60 * MIN),)
    assert r.meta.gaps == (TimeRange(T0 + 60 * MIN, T0 + 120 * MIN),)


async def test_backfill_deadline_firing_first_is_the_breach_named(
    coordinator: RunningCoordinator, questdb_url: str
) -> None:
    slow = TestWorker(coordinator.address, questdb_url, delay=5.0)
    sla = {"total_deadline_ms": 1000, "backfill_deadline_ms": 500}
    auto = settings(coordinator, questdb_url, strategy="auto_backfill", sla=sla)
    seamless = auto.with_overrides(strategy="seamless")
    try:
        async with slow.running():
            async with AsyncSeamlessProvider(auto) as p:
                with pytest.raises(SeamlessSLAExceeded) as info:
                    await p.read(T0, T0 + 120 * MIN, node_id="HALF")
            async with AsyncSeamlessProvider(seamless) as p:
                r = await p.read(T0, T0 + 120 * MIN, node_id="HALF")
    finally:
        await slow.aclose()
    assert info.value.stage == "backfill"
    assert r.meta.downgraded and "backfill deadline" in r.meta.reason
    assert "backfill_breach" in r.meta.timings_ms and "total_breach" not in r.meta.timings_ms
