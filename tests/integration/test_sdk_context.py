"""Execution context, as-of reads, coverage and freshness holds, and the cache without a
coordinator — against the real QuestDB (and a real coordinator for published fingerprints)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from seamfill.core.timeconv import us_to_iso
from seamfill.core.types import Series, TimeRange
from seamfill.sdk import AsyncSeamlessProvider, ComputeContext, SeamlessSettings
from seamfill.sdk.read.storage import StorageReader, sql_string
from tests.coordinator_fixtures import test_dataset_spec
from tests.sdk_support import MIN, T0, count, drop_table, grid, wait_for

pytestmark = pytest.mark.integration

DDL = (
    'CREATE TABLE IF NOT EXISTS "{t}" (ts TIMESTAMP, symbol SYMBOL, open DOUBLE, high DOUBLE, '
    "low DOUBLE, close DOUBLE, volume DOUBLE, ingested_at TIMESTAMP) TIMESTAMP(ts) "
    "PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, symbol)"
)
INGESTED = 1_730_419_200_000_000  # 2024-11-01: when the first rows arrived
AS_OF = 1_735_689_600_000_000  # 2025-01-01: the backtest's as-of
LATER = 1_738_368_000_000_000  # 2025-02-01: rows that arrive after it


def insert_at(
    url: str, table: str, symbol: str, ts_us: Iterable[int], price: float, ingested_us: int
) -> None:
    """Bars stamped with an explicit ingestion time, visible before returning."""
    stamps = list(ts_us)
    rows = ", ".join(
        f"('{us_to_iso(t)}', {sql_string(symbol)}, {price}, {price + 1}, {price - 1}, "
        f"{price + 0.5}, 1.0, '{us_to_iso(ingested_us)}')"
        for t in stamps
    )
    reader = StorageReader(url)
    reader.exec(f'INSERT INTO "{table}" VALUES {rows}')

    def landed() -> bool:
        body = reader.exec(
            f'SELECT count() FROM "{table}" WHERE symbol = {sql_string(symbol)} '
            f"AND ingested_at = '{us_to_iso(ingested_us)}' AND close = {price + 0.5}"
        )
        return int(body["dataset"][0][0]) >= len(stamps)

    wait_for(landed, what="rows visible")


@pytest.fixture
def table(questdb_url: str, unique: str) -> Iterator[str]:
    name = f"ctx_{unique}"
    StorageReader(questdb_url).exec(DDL.format(t=name))
    yield name
    drop_table(questdb_url, name)


def local(url: str, table: str, **kw: Any) -> SeamlessSettings:
    return SeamlessSettings(questdb_url=url, table=table, dataset=table, interval="1m", **kw)


BACKTEST = ComputeContext(world_id="w1", execution_domain="backtest", as_of=AS_OF)


async def test_backtest_as_of_reads_the_same_rows_after_later_rows_land(
    questdb_url: str, table: str, coordinator_factory: Any
) -> None:
    coord = coordinator_factory(datasets={"ctx.bars_1m": test_dataset_spec(table)})
    s = SeamlessSettings(coordinator_url=coord.address, questdb_url=questdb_url)
    insert_at(questdb_url, table, "BTC", grid(T0, 30), 10.0, INGESTED)
    async with AsyncSeamlessProvider(s) as p:
        first = await p.read(T0, T0 + 60 * MIN, node_id="ctx.bars_1m/BTC", context=BACKTEST)
        insert_at(questdb_url, table, "BTC", grid(T0 + 30 * MIN, 30), 10.0, LATER)
        again = await p.read(T0, T0 + 60 * MIN, node_id="ctx.bars_1m/BTC", context=BACKTEST)
        now = await p.read(
            T0,
            T0 + 60 * MIN,
            node_id="ctx.bars_1m/BTC",
            context={"world_id": "w1", "execution_domain": "backtest"},
        )
    assert len(first.frame) == 30 and len(again.frame) == 30 and len(now.frame) == 60
    assert first.frame.equals(again.frame)
    assert first.meta.fingerprint is not None and again.meta.fingerprint is not None
    assert first.meta.fingerprint.sha256 == again.meta.fingerprint.sha256
    assert first.meta.fingerprint.as_of_us == AS_OF
    assert not again.meta.hold and again.meta.breaches == ()
    assert again.meta.context == {
        "world_id": "w1",
        "execution_domain": "backtest",
        "as_of_us": AS_OF,
    }
    published = coord.client().get_fingerprints(Series("ctx.bars_1m", "BTC"))
    assert [f.sha256 for f in published] == [first.meta.fingerprint.sha256]


async def test_a_row_changed_under_the_as_of_holds_with_as_of_regression(
    questdb_url: str, table: str, coordinator_factory: Any
) -> None:
    coord = coordinator_factory(datasets={"ctx.bars_1m": test_dataset_spec(table)})
    s = SeamlessSettings(coordinator_url=coord.address, questdb_url=questdb_url)
    insert_at(questdb_url, table, "ETH", grid(T0, 20), 10.0, INGESTED)
    async with AsyncSeamlessProvider(s) as p:
        first = await p.read(T0, T0 + 20 * MIN, node_id="ctx.bars_1m/ETH", context=BACKTEST)
        insert_at(questdb_url, table, "ETH", [T0 + 5 * MIN], 99.0, LATER)  # an upsert
        held = await p.read(T0, T0 + 20 * MIN, node_id="ctx.bars_1m/ETH", context=BACKTEST)
    assert len(first.frame) == 20 and not first.meta.hold
    assert held.meta.hold and held.meta.breaches == ("as_of_regression",)
    assert len(held.frame) == 0 and held.meta.downgraded
    assert held.meta.reason.startswith("as_of_regression: ")
    assert "19 row(s)" in held.meta.reason and "20 row(s)" in held.meta.reason


async def test_backtest_never_reads_the_forming_edge_live_does(
    questdb_url: str, table: str
) -> None:
    class Edge:
        asked = 0

        async def fetch(self, series: Series, range: TimeRange, dataset: Any) -> Any:
            from tests.sdk_support import bars_frame

            Edge.asked += 1
            return bars_frame(range_of(range), price=5.0)

    def range_of(r: TimeRange) -> list[int]:
        return list(range(r.start_us, r.end_us, MIN))

    import time

    now = (time.time_ns() // 1000) // MIN * MIN
    insert_at(questdb_url, table, "SOL", grid(now - 10 * MIN, 10), 10.0, INGESTED)
    s = local(questdb_url, table, strategy="partial_fill")
    async with AsyncSeamlessProvider(s, live_fetcher=Edge()) as p:
        bt = await p.read(
            now - 10 * MIN, now + MIN, node_id="SOL", context={"execution_domain": "backtest"}
        )
        assert Edge.asked == 0 and bt.meta.live_rows == 0
        live = await p.read(
            now - 10 * MIN, now + MIN, node_id="SOL", context={"execution_domain": "live"}
        )
    assert Edge.asked == 1 and live.meta.live_rows == 1


async def test_min_coverage_over_a_half_covered_range_holds_with_coverage_breach(
    questdb_url: str, table: str
) -> None:
    insert_at(questdb_url, table, "BTC", grid(T0, 50), 10.0, INGESTED)
    s = local(questdb_url, table, strategy="partial_fill", sla={"min_coverage": 0.9})
    async with AsyncSeamlessProvider(s) as p:
        r = await p.read(T0, T0 + 100 * MIN, node_id="BTC")
    assert r.meta.coverage_ratio == pytest.approx(0.5)
    assert r.meta.hold and r.meta.breaches == ("coverage_breach",) and len(r.frame) == 0
    assert r.meta.reason.startswith(
        "coverage_breach: coverage 0.5000 is below sla.min_coverage 0.9"
    )


async def test_min_coverage_breach_downgrades_when_the_policy_says_so(
    questdb_url: str, table: str
) -> None:
    insert_at(questdb_url, table, "BTC", grid(T0, 50), 10.0, INGESTED)
    sla = {"min_coverage": 0.9, "on_hold_breach": "downgrade"}
    async with AsyncSeamlessProvider(
        local(questdb_url, table, strategy="partial_fill", sla=sla)
    ) as p:
        r = await p.read(T0, T0 + 100 * MIN, node_id="BTC")
    assert not r.meta.hold and r.meta.downgraded and len(r.frame) == 50
    assert r.meta.breaches == ("coverage_breach",)


async def test_max_lag_holds_with_freshness_breach(questdb_url: str, table: str) -> None:
    insert_at(questdb_url, table, "BTC", grid(T0, 50), 10.0, INGESTED)  # 2024: far behind now
    s = local(questdb_url, table, strategy="partial_fill", sla={"max_lag_ms": 60_000})
    async with AsyncSeamlessProvider(s) as p:
        r = await p.read(T0, T0 + 50 * MIN, node_id="BTC")
        fresh = await p.read(T0, T0 + 50 * MIN, node_id="BTC", context={"world_id": "x"})
    assert r.meta.coverage_ratio == 1.0
    assert r.meta.hold and r.meta.breaches == ("freshness_breach",) and len(r.frame) == 0
    assert "more than sla.max_lag_ms 60000" in r.meta.reason
    assert fresh.meta.hold  # the bound is the policy's, whatever the context


async def test_max_sync_gap_bars_holds_when_the_newest_bar_trails_the_edge(
    questdb_url: str, table: str
) -> None:
    insert_at(questdb_url, table, "BTC", grid(T0, 40), 10.0, INGESTED)
    s = local(questdb_url, table, strategy="partial_fill", sla={"max_sync_gap_bars": 5})
    async with AsyncSeamlessProvider(s) as p:
        ok = await p.read(T0, T0 + 44 * MIN, node_id="BTC")
        held = await p.read(T0, T0 + 50 * MIN, node_id="BTC")
    assert not ok.meta.hold and len(ok.frame) == 40
    assert held.meta.hold and held.meta.breaches == ("freshness_breach",)
    assert "by 10 bar(s)" in held.meta.reason


class Counting:
    """The provider's storage reads, counted."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.reads: list[TimeRange] = []
        self.slots = getattr(inner, "slots", None)

    def read(self, table: str, symbol: str, rng: TimeRange, **kw: Any) -> Any:
        self.reads.append(rng)
        return self.inner.read(table, symbol, rng, **kw)

    def close(self) -> None:
        self.inner.close()


def counting(p: AsyncSeamlessProvider) -> Counting:
    reader = Counting(p.exporter)
    p.exporter = reader  # type: ignore[assignment]
    return reader


async def test_repeated_read_without_coordinator_is_served_from_cache_not_storage(
    questdb_url: str, table: str
) -> None:
    insert_at(questdb_url, table, "BTC", grid(T0, 60), 10.0, INGESTED)
    async with AsyncSeamlessProvider(local(questdb_url, table, strategy="fail_fast")) as p:
        reader = counting(p)
        first = await p.read(T0, T0 + 60 * MIN, node_id="BTC")
        second = await p.read(T0, T0 + 60 * MIN, node_id="BTC")
    assert first.meta.source == "storage" and second.meta.source == "cache"
    assert len(reader.reads) == 1 and second.frame.equals(first.frame)


async def test_the_cache_keys_on_the_context_and_counts_hits_and_misses(
    questdb_url: str, table: str
) -> None:
    insert_at(questdb_url, table, "BTC", grid(T0, 60), 10.0, INGESTED)
    async with AsyncSeamlessProvider(local(questdb_url, table, strategy="fail_fast")) as p:
        reader = counting(p)
        await p.read(T0, T0 + 60 * MIN, node_id="BTC")
        again = await p.read(T0, T0 + 60 * MIN, node_id="BTC")
        other = await p.read(T0, T0 + 60 * MIN, node_id="BTC", context={"world_id": "w2"})
    assert again.meta.source == "cache" and other.meta.source == "storage"
    assert len(reader.reads) == 2  # the first read, and the other context's (its own key)
    assert p.cache.stats.hits == 1 and p.cache.stats.misses == 2
    assert other.meta.context["world_id"] == "w2"
    assert count(questdb_url, table, "BTC") == 60


async def test_rows_written_by_the_sink_carry_the_watermark_as_of_reads_filter_on(
    questdb_url: str, unique: str
) -> None:
    import time

    from seamfill.core.types import Dataset
    from seamfill.sdk.backfill.sink import QuestDBSink
    from tests.sdk_support import bars_frame

    name = f"wm_{unique}"
    ds = Dataset(name=name, table=name, source="synthetic", interval_us=MIN)
    before = time.time_ns() // 1000
    try:
        async with QuestDBSink(questdb_url) as sink:
            await sink.write(ds, "BTC", bars_frame(grid(T0, 20)))
            await sink.wait_visible(ds, "BTC", TimeRange(T0, T0 + 20 * MIN), 20)
        after = time.time_ns() // 1000
        s = local(questdb_url, name, strategy="partial_fill")
        async with AsyncSeamlessProvider(s) as p:
            early = {"execution_domain": "backtest", "as_of": before - 1}
            late = {"execution_domain": "backtest", "as_of": after}
            none = await p.read(T0, T0 + 20 * MIN, node_id="BTC", context=early)
            some = await p.read(T0, T0 + 20 * MIN, node_id="BTC", context=late)
        assert len(none.frame) == 0 and len(some.frame) == 20
        assert "as-of fingerprint not verified: no coordinator" in some.meta.reason
    finally:
        drop_table(questdb_url, name)


async def test_as_of_on_a_table_without_the_watermark_names_the_fix(
    questdb_url: str, unique: str
) -> None:
    from seamfill.core.errors import StorageError
    from tests.sdk_support import create_bars_table

    name = f"nowm_{unique}"
    create_bars_table(questdb_url, name)
    try:
        async with AsyncSeamlessProvider(local(questdb_url, name)) as p:
            with pytest.raises(StorageError, match=r"ADD COLUMN ingested_at TIMESTAMP"):
                await p.read(T0, T0 + 10 * MIN, node_id="BTC", context=BACKTEST)
    finally:
        drop_table(questdb_url, name)
