"""The QuestDB sink and the shared backfill step against a real QuestDB."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pandas as pd
import psycopg
import pytest

from seamfill.core.errors import SchemaMismatch, StorageError
from seamfill.core.types import Dataset, Series, TimeRange
from seamfill.sdk.backfill.chunk import ChunkProgress, run_chunk
from seamfill.sdk.backfill.fetchers import SyntheticFetcher
from seamfill.sdk.backfill.sink import QuestDBSink, quote_literal

pytestmark = pytest.mark.integration

MIN = 60_000_000
T0 = 1_700_000_000_000_000 // MIN * MIN
HOSTILE = [
    "BTC-USDT",
    "a,b",
    "a b",
    "a=b",
    'q"uote',
    "it's",
    "x' OR '1'='1",
    "'; DROP TABLE t; --",
    "new\nline",
    "cr\rlf\n",
    "tab\there",
    "back\\slash\\",
    "trailing\\",
    "ünïcødé €/😀",
    "BTC/USDT:USDT",
    " lead and trail ",
]


@pytest.fixture
async def sink(questdb_url: str) -> AsyncIterator[QuestDBSink]:
    s = QuestDBSink(questdb_url, visibility_timeout_s=20)
    yield s
    await s.aclose()


@pytest.fixture
async def table(sink: QuestDBSink, unique: str) -> AsyncIterator[str]:
    name = f"sink_{unique}"
    yield name
    await sink.exec(f'DROP TABLE IF EXISTS "{name}"')


def _ds(table: str, kind: str = "bars", interval_us: int = MIN) -> Dataset:
    return Dataset(f"test.{table}", table, "synthetic", interval_us, kind=kind)


async def test_hostile_symbols_round_trip_verbatim_and_inject_nothing(
    sink: QuestDBSink, table: str, questdb_dsn: str
) -> None:
    ds = _ds(table)
    rng = TimeRange(T0, T0 + 30 * MIN)
    for symbol in HOSTILE:
        assert await run_chunk(SyntheticFetcher(), sink, Series(ds.name, symbol), rng, ds) == 30
    body = await sink.exec(f'SELECT symbol, count() n FROM "{table}" ORDER BY symbol')
    assert sorted(HOSTILE) == sorted(r[0] for r in body["dataset"])
    assert all(r[1] == 30 for r in body["dataset"])
    # The same symbols come back byte for byte through PGWire with a bind parameter too.
    with psycopg.connect(questdb_dsn, autocommit=True) as conn:
        for symbol in HOSTILE:
            got = conn.execute(
                f'SELECT count() FROM "{table}" WHERE symbol = %s', (symbol,)
            ).fetchone()
            assert got == (30,), repr(symbol)
    # A quoted literal selects exactly its own rows, never more.
    for symbol in HOSTILE:
        assert await sink.count(ds, symbol, rng) == 30


async def test_writes_are_idempotent_and_visible_when_run_chunk_returns(
    sink: QuestDBSink, table: str
) -> None:
    ds = _ds(table)
    series = Series(ds.name, "ETH-USDT")
    rng = TimeRange(T0, T0 + 5000 * MIN)
    progress = ChunkProgress()
    for _ in range(2):
        rows = await run_chunk(SyntheticFetcher(), sink, series, rng, ds, progress=progress)
        assert rows == 5000
        assert await sink.count(ds, series.symbol, rng) == 5000
    assert (progress.stage, progress.rows, progress.until_us) == ("done", 5000, rng.end_us)
    body = await sink.exec(f'SELECT count() FROM (SELECT DISTINCT ts, symbol FROM "{table}")')
    assert body["dataset"][0][0] == 5000


async def test_table_is_a_partitioned_wal_table_with_dedup_keys(
    sink: QuestDBSink, table: str
) -> None:
    await sink.ensure_table(_ds(table))
    body = await sink.exec(
        f"SELECT walEnabled, partitionBy, designatedTimestamp, dedup FROM tables() "
        f"WHERE table_name = {quote_literal(table)}"
    )
    assert body["dataset"] == [[True, "DAY", "ts", True]]


async def test_trades_dedup_on_trade_id(sink: QuestDBSink, table: str) -> None:
    ds = _ds(table, kind="trades", interval_us=1_000_000)
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime([T0, T0, T0 + 1_000_000], unit="us"),
            "trade_id": ["1", "2", "3"],
            "price": [1.0, 2.0, 3.0],
            "amount": [0.1, 0.2, 0.3],
            "side": ["buy", "sell", "buy"],
        }
    )
    series = Series(ds.name, "a,b c")
    rng = TimeRange(T0, T0 + 10_000_000)
    for _ in range(2):
        rows = await sink.write(ds, series.symbol, frame)
        await sink.wait_visible(ds, series.symbol, rng, rows)
    body = await sink.exec(f'SELECT trade_id, side, symbol FROM "{table}" ORDER BY trade_id')
    assert body["dataset"] == [["1", "buy", "a,b c"], ["2", "sell", "a,b c"], ["3", "buy", "a,b c"]]


@pytest.mark.parametrize(
    ("ddl", "match"),
    [
        (
            "ts TIMESTAMP, symbol SYMBOL, open LONG, high DOUBLE, low DOUBLE, close DOUBLE, "
            "volume DOUBLE",
            "column 'open' is LONG",
        ),
        (
            "ts TIMESTAMP, symbol SYMBOL, open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE",
            "no column 'volume'",
        ),
        (
            "ts TIMESTAMP, symbol VARCHAR, open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE, "
            "volume DOUBLE",
            "column 'symbol' is VARCHAR",
        ),
    ],
)
async def test_schema_mismatch_is_terminal_and_names_the_column(
    sink: QuestDBSink, table: str, ddl: str, match: str
) -> None:
    await sink.exec(
        f'CREATE TABLE "{table}" ({ddl}) TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts)'
    )
    ds = _ds(table)
    with pytest.raises(SchemaMismatch, match=match):
        await run_chunk(SyntheticFetcher(), sink, Series(ds.name, "X"), TimeRange(T0, T0 + MIN), ds)
    body = await sink.exec(f'SELECT count() FROM "{table}"')
    assert body["dataset"][0][0] == 0


async def test_table_without_dedup_is_refused(sink: QuestDBSink, table: str) -> None:
    cols = ", ".join(f"{c} DOUBLE" for c in ("open", "high", "low", "close", "volume"))
    await sink.exec(
        f'CREATE TABLE "{table}" (ts TIMESTAMP, symbol SYMBOL, {cols}) '
        "TIMESTAMP(ts) PARTITION BY DAY WAL"
    )
    with pytest.raises(SchemaMismatch, match="'ts' is not a dedup upsert key"):
        await sink.ensure_table(_ds(table))


async def test_rows_not_visible_in_time_fail_retryable_with_the_wal_state(
    questdb_url: str, sink: QuestDBSink, table: str
) -> None:
    ds = _ds(table)
    series = Series(ds.name, "X")
    rng = TimeRange(T0, T0 + 10 * MIN)
    assert await run_chunk(SyntheticFetcher(), sink, series, rng, ds) == 10
    impatient = QuestDBSink(questdb_url, visibility_timeout_s=0.3)
    try:
        # Waiting for one row more than the range can hold never succeeds: the wait is bounded.
        with pytest.raises(StorageError, match=r"but only 10 visible after 0\.3s; WAL applied"):
            await impatient.wait_visible(ds, series.symbol, rng, 11)
    finally:
        await impatient.aclose()


async def test_an_empty_source_is_covered_empty_and_writes_nothing(
    sink: QuestDBSink, table: str
) -> None:
    class Empty:
        async def fetch(self, series: Series, range: TimeRange, dataset: Dataset) -> pd.DataFrame:
            return pd.DataFrame(columns=["ts", "open", "high", "low", "close", "volume"])

    ds = _ds(table)
    rows = await run_chunk(Empty(), sink, Series(ds.name, "X"), TimeRange(T0, T0 + MIN), ds)
    assert rows == 0


async def test_the_fingerprint_of_a_chunk_matches_its_rows_read_back(
    sink: QuestDBSink, table: str
) -> None:
    from seamfill.sdk.quality.fingerprint import digest

    ds = _ds(table)
    series = Series(ds.name, "FP")
    rng = TimeRange(T0, T0 + 100 * MIN)
    progress = ChunkProgress()
    await run_chunk(SyntheticFetcher(), sink, series, rng, ds, progress=progress, fingerprint=True)
    body = await sink.exec(
        f'SELECT ts, open, high, low, close, volume FROM "{table}" '
        "WHERE symbol = 'FP' ORDER BY ts"
    )
    frame = pd.DataFrame(body["dataset"], columns=["ts", "open", "high", "low", "close", "volume"])
    frame["ts"] = pd.to_datetime(frame["ts"]).dt.tz_localize(None).astype("datetime64[us]")
    assert len(progress.fingerprint) == 64
    assert digest(frame, series, rng, 0) == progress.fingerprint


async def test_many_concurrent_chunks_are_each_visible_when_their_wait_returns(
    sink: QuestDBSink, table: str
) -> None:
    ds = _ds(table)
    rng = TimeRange(T0, T0 + 500 * MIN)

    async def one(i: int) -> int:
        series = Series(ds.name, f"C{i}")
        await run_chunk(SyntheticFetcher(), sink, series, rng, ds)
        # Visible the moment run_chunk returned: no waiting here.
        return await sink.count(ds, series.symbol, rng)

    counts = await asyncio.gather(*(one(i) for i in range(20)))
    assert counts == [500] * 20


async def test_an_unreachable_questdb_is_a_retryable_storage_error() -> None:
    from seamfill.core.errors import ConfigError
    from seamfill.sdk.backfill.chunk import is_retryable

    with pytest.raises(ConfigError, match="not an http"):
        QuestDBSink("127.0.0.1:9000")
    nowhere = QuestDBSink("http://127.0.0.1:1", request_timeout_s=2)
    try:
        with pytest.raises(StorageError, match="cannot be reached") as info:
            await nowhere.exec("SELECT 1")
        assert is_retryable(info.value)
    finally:
        await nowhere.aclose()


async def test_a_trades_page_repeating_a_row_completes_with_the_deduplicated_count(
    questdb_url: str, table: str
) -> None:
    class Repeating:
        async def fetch(self, series: Series, range: TimeRange, dataset: Dataset) -> pd.DataFrame:
            return pd.DataFrame(
                {
                    "ts": pd.to_datetime([T0, T0, T0 + 1_000_000], unit="us"),
                    "trade_id": ["7", "7", "8"],  # the upstream's page repeats trade 7
                    "price": [1.0, 1.0, 3.0],
                    "amount": [0.1, 0.1, 0.3],
                    "side": ["buy", "buy", "sell"],
                }
            )

    ds = _ds(table, kind="trades", interval_us=1_000_000)
    series, rng = Series(ds.name, "BTC"), TimeRange(T0, T0 + 10_000_000)
    # A short visibility wait: counting 3 where 2 can ever be visible would fail in 3 s.
    sink = QuestDBSink(questdb_url, visibility_timeout_s=3)
    try:
        rows = await run_chunk(Repeating(), sink, series, rng, ds)
        body = await sink.exec(f'SELECT trade_id FROM "{table}" ORDER BY trade_id')
        direct = await sink.write(ds, "ETH", (await Repeating().fetch(series, rng, ds)))
    finally:
        await sink.aclose()
    assert rows == 2 and body["dataset"] == [["7"], ["8"]]
    assert direct == 2  # the sink itself counts distinct keys, whoever calls it
