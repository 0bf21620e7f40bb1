"""The provider with no coordinator: storage-derived coverage, inline backfill over ILP, the four
strategies, SLA cut-offs, fingerprints and the live edge — against the real QuestDB."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pandas as pd
import pytest
from prometheus_client import REGISTRY

from seamfill.core.errors import (
    ConformanceError,
    CoordinatorUnavailable,
    FetchError,
    MissingData,
    SeamlessSLAExceeded,
)
from seamfill.core.timeconv import us_to_iso
from seamfill.core.types import Dataset, Series, TimeRange
from seamfill.sdk import AsyncSeamlessProvider, SeamlessProvider
from seamfill.sdk.backfill.fetchers import SyntheticFetcher
from seamfill.sdk.read.storage import StorageReader
from seamfill.sdk.settings import SeamlessSettings
from tests.sdk_support import (
    MIN,
    T0,
    bars_frame,
    count,
    create_bars_table,
    drop_table,
    grid,
    insert_bars,
)

pytestmark = pytest.mark.integration


class CountingFetcher:
    """Synthetic bars; counts calls per chunk and can be slowed down."""

    def __init__(self, delay: float = 0.0) -> None:
        self.inner = SyntheticFetcher(seed=7)
        self.delay = delay
        self.calls: list[TimeRange] = []

    async def fetch(self, series: Series, range: TimeRange, dataset: Dataset) -> pd.DataFrame:
        self.calls.append(range)
        if self.delay:
            await asyncio.sleep(self.delay)
        return await self.inner.fetch(series, range, dataset)


class EdgeFeed:
    def __init__(self) -> None:
        self.asked: list[TimeRange] = []

    async def fetch(self, series: Series, range: TimeRange, dataset: Dataset) -> pd.DataFrame:
        self.asked.append(range)
        start = range.start_us - MIN  # one bar of overlap that stitching must drop
        return bars_frame(range_bars(start, range.end_us), price=50.0)


def range_bars(start: int, end: int) -> range:
    return range(start, end, MIN)


@pytest.fixture
async def table(questdb_url: str, unique: str) -> AsyncIterator[str]:
    name = f"sdk_{unique}"
    create_bars_table(questdb_url, name)
    yield name
    drop_table(questdb_url, name)


def settings(url: str, table: str, **kw: Any) -> SeamlessSettings:
    return SeamlessSettings(questdb_url=url, table=table, dataset=table, interval="1m", **kw)


async def test_covered_range_reads_every_bar_including_the_last(
    questdb_url: str, table: str
) -> None:
    insert_bars(questdb_url, table, "BTC", grid(T0, 100))
    insert_bars(questdb_url, table, "BTC", grid(T0 + 100 * MIN, 50))  # adjacent range
    async with AsyncSeamlessProvider(settings(questdb_url, table, strategy="fail_fast")) as p:
        r = await p.read(T0, T0 + 100 * MIN, node_id="BTC", interval="1m")
        assert len(r.frame) == 100 and r.meta.complete
        assert r.frame["ts"].iloc[0].value // 1000 == T0
        assert r.frame["ts"].iloc[-1].value // 1000 == T0 + 99 * MIN
        both = await p.read(T0, T0 + 150 * MIN, node_id="BTC", interval="1m")
        assert len(both.frame) == 150 and both.frame["ts"].is_unique
        assert both.meta.covered == (TimeRange(T0, T0 + 150 * MIN),)


async def test_fail_fast_lists_gaps_and_writes_nothing(questdb_url: str, table: str) -> None:
    insert_bars(questdb_url, table, "BTC", grid(T0, 10) + grid(T0 + 20 * MIN, 10))
    fetcher = CountingFetcher()
    s = settings(questdb_url, table, strategy="fail_fast")
    async with AsyncSeamlessProvider(s, fetcher=fetcher) as p:
        with pytest.raises(MissingData) as info:
            await p.read(T0, T0 + 30 * MIN, node_id="BTC", interval="1m")
    assert info.value.gaps == [TimeRange(T0 + 10 * MIN, T0 + 20 * MIN)]
    assert fetcher.calls == [] and count(questdb_url, table, "BTC") == 20


async def test_auto_backfill_fills_an_empty_series_inline_once(
    questdb_url: str, table: str
) -> None:
    fetcher = CountingFetcher()
    s = settings(questdb_url, table, strategy="auto_backfill")
    async with AsyncSeamlessProvider(s, fetcher=fetcher) as p:
        a, b = await asyncio.gather(
            p.read(T0, T0 + 1500 * MIN, node_id="ETH", interval="1m"),
            p.read(T0, T0 + 1500 * MIN, node_id="ETH", interval="1m"),
        )
    assert len(a.frame) == len(b.frame) == 1500 and a.meta.complete and not a.meta.downgraded
    assert len(fetcher.calls) == 2  # two chunks of 1000 bars, each fetched once
    assert a.meta.fingerprint is not None and a.meta.fingerprint == b.meta.fingerprint
    assert count(questdb_url, table, "ETH") == 1500


async def test_partial_fill_returns_now_and_completes_later(questdb_url: str, table: str) -> None:
    insert_bars(questdb_url, table, "SOL", grid(T0, 10))
    fetcher = CountingFetcher(delay=0.2)
    s = settings(questdb_url, table, strategy="partial_fill")
    async with AsyncSeamlessProvider(s, fetcher=fetcher) as p:
        first = await p.read(T0, T0 + 40 * MIN, node_id="SOL", interval="1m")
        assert len(first.frame) == 10 and first.meta.gaps == (
            TimeRange(T0 + 10 * MIN, T0 + 40 * MIN),
        )
        assert first.meta.coverage_ratio == pytest.approx(0.25)
        for _ in range(200):
            later = await p.read(T0, T0 + 40 * MIN, node_id="SOL", interval="1m")
            if later.meta.complete:
                break
            await asyncio.sleep(0.05)
        assert later.meta.complete and len(later.frame) == 40


async def test_seamless_downgrades_at_the_backfill_deadline(questdb_url: str, table: str) -> None:
    insert_bars(questdb_url, table, "ADA", grid(T0, 10))
    s = settings(
        questdb_url,
        table,
        strategy="seamless",
        sla={"backfill_deadline_ms": 300, "total_deadline_ms": 20_000},
    )
    async with AsyncSeamlessProvider(s, fetcher=CountingFetcher(delay=5.0)) as p:
        started = time.monotonic()
        r = await p.read(T0, T0 + 30 * MIN, node_id="ADA", interval="1m")
        elapsed = time.monotonic() - started
    assert r.meta.downgraded and "backfill deadline" in r.meta.reason
    assert r.meta.gaps == (TimeRange(T0 + 10 * MIN, T0 + 30 * MIN),) and len(r.frame) == 10
    assert r.meta.timings_ms["backfill"] < 300 + 700  # cut off at the deadline...
    assert elapsed < 5.0  # ...long before the slow source could have answered


async def test_auto_backfill_raises_at_the_deadline(questdb_url: str, table: str) -> None:
    s = settings(questdb_url, table, strategy="auto_backfill", sla={"backfill_deadline_ms": 200})
    async with AsyncSeamlessProvider(s, fetcher=CountingFetcher(delay=5.0)) as p:
        with pytest.raises(SeamlessSLAExceeded) as info:
            await p.read(T0, T0 + 30 * MIN, node_id="XRP", interval="1m")
    assert info.value.stage == "backfill"


async def test_fingerprint_is_stable_and_sees_one_price(questdb_url: str, table: str) -> None:
    insert_bars(questdb_url, table, "DOT", grid(T0, 20))
    s = settings(questdb_url, table, strategy="fail_fast", cache_bytes=0)
    async with AsyncSeamlessProvider(s) as p:
        a = await p.read(T0, T0 + 20 * MIN, node_id="DOT", interval="1m")
        b = await p.read(T0, T0 + 20 * MIN, node_id="DOT", interval="1m")
        assert a.meta.fingerprint is not None and b.meta.fingerprint is not None
        assert a.meta.fingerprint.sha256 == b.meta.fingerprint.sha256
        insert_bars(questdb_url, table, "DOT", [T0 + 5 * MIN], price=10.25, wait=False)
        for _ in range(100):
            c = await p.read(T0, T0 + 20 * MIN, node_id="DOT", interval="1m")
            if c.frame["open"].iloc[5] == 10.25:
                break
            await asyncio.sleep(0.05)
        assert c.meta.fingerprint is not None and len(c.frame) == 20
        assert c.meta.fingerprint.sha256 != a.meta.fingerprint.sha256


def test_sync_form_serves_the_live_edge_after_history(questdb_url: str, table: str) -> None:
    now = time.time_ns() // 1000
    start = now - now % MIN - 30 * MIN
    feed = EdgeFeed()
    s = settings(questdb_url, table, strategy="seamless", settle_ms=120_000)
    with SeamlessProvider(s, fetcher=CountingFetcher(), live_fetcher=feed) as p:
        df = p.fetch(start, now, node_id="LIVE", interval=60)
    meta = df.attrs["seamless"]
    assert feed.asked and feed.asked[0].start_us == meta.settled_until_us
    assert df["ts"].is_unique and df["ts"].is_monotonic_increasing
    assert meta.live_rows > 0 and meta.source == "storage+live" and meta.complete
    assert (df["close"].iloc[-meta.live_rows :] == 50.5).all()
    assert len(df) == (meta.range.end_us - meta.range.start_us) // MIN


@pytest.fixture
def silent_coordinator() -> Iterator[str]:
    """A TCP port that accepts connections and never answers: a hung coordinator."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


async def test_a_hung_coordinator_costs_only_the_storage_deadline(
    questdb_url: str, table: str, silent_coordinator: str
) -> None:
    insert_bars(questdb_url, table, "BTC", grid(T0, 30))
    s = settings(
        questdb_url,
        table,
        strategy="seamless",
        coordinator_url=silent_coordinator,
        sla={"storage_deadline_ms": 300, "total_deadline_ms": 10_000},
    )
    async with AsyncSeamlessProvider(s) as p:
        started = time.monotonic()
        r = await p.read(T0, T0 + 40 * MIN, node_id="BTC", interval="1m")
        elapsed = time.monotonic() - started
        assert r.meta.degraded and r.meta.downgraded and "coordinator" in r.meta.reason
        assert len(r.frame) == 30 and r.meta.gaps == (TimeRange(T0 + 30 * MIN, T0 + 40 * MIN),)
        assert r.meta.timings_ms["coverage"] < 300 + 1200  # cut off at the storage deadline
        assert elapsed < 10.0  # the client's own RPC timeout would have been 10 s
    async with AsyncSeamlessProvider(s.with_overrides(strategy="fail_fast")) as p:
        started = time.monotonic()
        with pytest.raises(CoordinatorUnavailable):
            await p.read(T0, T0 + 40 * MIN, node_id="BTC", interval="1m")
        assert time.monotonic() - started < 10.0


async def test_cache_serves_settled_complete_reads_only(questdb_url: str, table: str) -> None:
    insert_bars(questdb_url, table, "ETH", grid(T0, 50))
    hits = REGISTRY.get_sample_value("seamless_cache_hits_total") or 0.0
    async with AsyncSeamlessProvider(settings(questdb_url, table, strategy="partial_fill")) as p:
        first = await p.read(T0, T0 + 50 * MIN, node_id="ETH", interval="1m")
        second = await p.read(T0 + 10 * MIN, T0 + 20 * MIN, node_id="ETH", interval="1m")
        partial = await p.read(T0, T0 + 60 * MIN, node_id="ETH", interval="1m")
        again = await p.read(T0, T0 + 60 * MIN, node_id="ETH", interval="1m")
    assert first.meta.source == "storage" and second.meta.source == "cache"
    assert len(second.frame) == 10 and second.frame["ts"].iloc[0].value // 1000 == T0 + 10 * MIN
    assert partial.meta.source == again.meta.source == "storage" and partial.meta.gaps
    assert REGISTRY.get_sample_value("seamless_cache_hits_total") == hits + 1


async def test_fingerprint_policies(questdb_url: str, table: str) -> None:
    insert_bars(questdb_url, table, "SOL", grid(T0, 10))
    base = settings(questdb_url, table, strategy="partial_fill", cache_bytes=0)
    async with AsyncSeamlessProvider(base) as p:
        partial = await p.read(T0, T0 + 20 * MIN, node_id="SOL", interval="1m")
    assert partial.meta.gaps and partial.meta.fingerprint is None
    async with AsyncSeamlessProvider(base.with_overrides(preview_fingerprint=True)) as p:
        preview = await p.read(T0, T0 + 20 * MIN, node_id="SOL", interval="1m")
        early = await p.read(T0, T0 + 10 * MIN, node_id="SOL", interval="1m")
    assert preview.meta.fingerprint is not None and preview.meta.fingerprint.preview
    async with AsyncSeamlessProvider(base.with_overrides(early_fingerprint=True)) as p:
        e = await p.read(T0, T0 + 10 * MIN, node_id="SOL", interval="1m")
    assert e.meta.fingerprint is not None and e.meta.fingerprint.early
    assert early.meta.fingerprint is not None and not early.meta.fingerprint.preview
    # Sorted, duplicate-free rows: the early digest equals the normalised one.
    assert e.meta.fingerprint.sha256 == early.meta.fingerprint.sha256


async def test_conformance_blocks_bad_stored_rows_unless_partial_ok(
    questdb_url: str, table: str
) -> None:
    insert_bars(questdb_url, table, "BAD", grid(T0, 10))
    reader_exec = StorageReader(questdb_url).exec
    reader_exec(
        f"INSERT INTO \"{table}\" VALUES ('{us_to_iso(T0 + 3 * MIN)}', 'BAD', 10, 8, 9, 9.5, 1)"
    )  # high < low (dedup upsert replaces the bar)
    reader_exec(
        f"INSERT INTO \"{table}\" VALUES ('{us_to_iso(T0 + 5 * MIN)}', 'BAD', 10, 11, 9, NaN, 1)"
    )  # a non-finite close
    reader_exec(
        f"INSERT INTO \"{table}\" VALUES ('{us_to_iso(T0 + 7 * MIN + 1_000_000)}', "
        "'BAD', 10, 11, 9, 10.5, 1)"
    )  # one second off the minute grid
    wait_for_rows = 11
    s = settings(
        questdb_url,
        table,
        strategy="fail_fast",
        cache_bytes=0,
        conformance={"severities": {"gaps": "ignore"}},
    )
    async with AsyncSeamlessProvider(s) as p:
        for _ in range(200):
            try:
                await p.read(T0, T0 + 10 * MIN, node_id="BAD", interval="1m")
            except ConformanceError as e:
                report = e.report
                if sum(report.counts.values()) >= 3 and report.rows_in == wait_for_rows:
                    break
            await asyncio.sleep(0.05)
        assert report.counts["ohlc"] == 1 and report.counts["non_finite"] == 1
        assert report.counts["grid"] == 1
    async with AsyncSeamlessProvider(s.with_overrides(partial_ok=True)) as p:
        r = await p.read(T0, T0 + 10 * MIN, node_id="BAD", interval="1m")
    assert r.meta.conformance is not None and r.meta.conformance.errors == {
        "grid": 1,
        "ohlc": 1,
        "non_finite": 1,
    }
    assert len(r.frame) == 11


async def test_the_callers_interval_holds_through_the_fill(questdb_url: str, table: str) -> None:
    s = settings(questdb_url, table, strategy="auto_backfill")  # settings say 1m
    async with AsyncSeamlessProvider(s, fetcher=CountingFetcher()) as p:
        r = await p.read(T0, T0 + 60 * MIN, node_id="FIVE", interval=300)
        cov = await p.coverage(T0, T0 + 60 * MIN, node_id="FIVE", interval="5min")
    assert len(r.frame) == 12 and r.meta.interval_us == 5 * MIN and r.meta.complete
    assert cov.complete


class BrokenUpstream:
    async def fetch(self, series: Series, range: TimeRange, dataset: Dataset) -> pd.DataFrame:
        raise FetchError(f"upstream answered 400 for {series.symbol!r}", retryable=False)


async def test_a_failed_fill_downgrades_seamless_and_raises_otherwise(
    questdb_url: str, table: str
) -> None:
    insert_bars(questdb_url, table, "GONE", grid(T0, 5))
    s = settings(questdb_url, table, strategy="seamless")
    async with AsyncSeamlessProvider(s, fetcher=BrokenUpstream()) as p:
        r = await p.read(T0, T0 + 10 * MIN, node_id="GONE", interval="1m")
    assert r.meta.downgraded and "backfill failed" in r.meta.reason and "400" in r.meta.reason
    assert len(r.frame) == 5 and r.meta.gaps == (TimeRange(T0 + 5 * MIN, T0 + 10 * MIN),)
    async with AsyncSeamlessProvider(
        s.with_overrides(strategy="auto_backfill"), fetcher=BrokenUpstream()
    ) as p:
        with pytest.raises(FetchError, match="400"):
            await p.read(T0, T0 + 10 * MIN, node_id="GONE", interval="1m")
