"""One read in three shapes, ranges larger than a fetch, hostile symbols: with a real coordinator,
a worker filling chunks over ILP, and the real QuestDB."""

from __future__ import annotations

import socket
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from seamfill.core.types import Series, TimeRange
from seamfill.sdk import (
    AsyncSeamlessProvider,
    InvalidArgument,
    SeamlessSettings,
    SeamlessSLAExceeded,
)
from seamfill.sdk.formats import meta_of_arrow
from seamfill.sdk.quality.fingerprint import digest
from tests.coordinator_fixtures import RunningCoordinator
from tests.integration.test_sdk_fleet import TestWorker, settings
from tests.sdk_support import MIN, T0, drop_table

pytestmark = pytest.mark.integration

HOSTILE = [
    "a,b c=d",
    'it\'s "quoted"',
    "line\nbreak\ttab",
    "ünïcödé-₿-🚀",
    "'; DROP TABLE x; --",
]


@pytest.fixture
async def worker(coordinator: RunningCoordinator, questdb_url: str) -> Any:
    w = TestWorker(coordinator.address, questdb_url)
    yield w
    await w.aclose()
    drop_table(questdb_url, coordinator.config.datasets[coordinator.dataset].table)


def _ts_us(values: Any) -> list[int]:
    return [int(pd.Timestamp(v).value // 1_000) for v in values]


@pytest.mark.parametrize("symbol", HOSTILE)
async def test_every_output_shape_has_the_same_rows_metadata_and_fingerprint(
    coordinator: RunningCoordinator, worker: TestWorker, questdb_url: str, symbol: str
) -> None:
    await worker.fill(Series(coordinator.dataset, symbol), TimeRange(T0, T0 + 60 * MIN))
    s = settings(coordinator, questdb_url, strategy="fail_fast", cache_bytes=0)
    async with AsyncSeamlessProvider(s) as p:
        frame = await p.fetch(T0, T0 + 60 * MIN, node_id=symbol)
        table = await p.fetch(T0, T0 + 60 * MIN, node_id=symbol, output="arrow")
        result = await p.read(T0, T0 + 60 * MIN, node_id=symbol)
        polars = result.to_polars()
    meta = frame.attrs["seamless"]
    assert isinstance(table, pa.Table) and isinstance(polars, pl.DataFrame)
    assert len(frame) == table.num_rows == polars.height == 60
    # The symbol comes back verbatim in every shape.
    assert set(frame["symbol"].astype(str)) == {symbol}
    assert set(table.column("symbol").to_pylist()) == {symbol}
    assert set(polars["symbol"].cast(pl.String).to_list()) == {symbol}
    assert _ts_us(frame["ts"]) == _ts_us(table.column("ts").to_pylist())
    assert _ts_us(frame["ts"]) == _ts_us(polars["ts"].to_list())
    assert frame["close"].tolist() == table.column("close").to_pylist() == polars["close"].to_list()
    # The same metadata on each: the Arrow table carries it as JSON.
    arrow_meta = meta_of_arrow(table)
    assert arrow_meta is not None and meta.fingerprint is not None
    assert arrow_meta["covered"] == [[T0, T0 + 60 * MIN]] and arrow_meta["gaps"] == []
    assert arrow_meta["fingerprint"]["sha256"] == meta.fingerprint.sha256
    assert arrow_meta["conformance"] == meta.conformance.to_dict()
    assert result.meta.fingerprint is not None
    assert result.meta.fingerprint.sha256 == meta.fingerprint.sha256
    # The digest of the rows is the same whatever shape they were read back from.
    fp = meta.fingerprint
    series = Series(coordinator.dataset, symbol)
    from_arrow = table.to_pandas()
    from_polars = polars.to_pandas()
    for rows in (frame, from_arrow, from_polars):
        assert digest(rows, series, fp.range, fp.as_of_us) == fp.sha256


@pytest.mark.parametrize("output", ["arrow", "pandas", "polars"])
async def test_iter_batches_yields_bounded_pieces_of_every_covered_bar(
    coordinator: RunningCoordinator, worker: TestWorker, questdb_url: str, output: str
) -> None:
    symbol = "'; DROP TABLE x; --"
    await worker.fill(Series(coordinator.dataset, symbol), TimeRange(T0, T0 + 600 * MIN))
    s = settings(coordinator, questdb_url, strategy="fail_fast", cache_bytes=0)
    async with AsyncSeamlessProvider(s) as p:
        whole = await p.fetch(T0, T0 + 600 * MIN, node_id=symbol)
        pieces = [
            b
            async for b in p.iter_batches(
                T0, T0 + 600 * MIN, node_id=symbol, batch_rows=128, output=output
            )
        ]
    kinds = {"arrow": pa.RecordBatch, "pandas": pd.DataFrame, "polars": pl.DataFrame}
    assert all(isinstance(b, kinds[output]) for b in pieces)
    assert len(pieces) == 5 and all(len(b) <= 128 for b in pieces)
    frames = [b.to_pandas() if output != "pandas" else b for b in pieces]
    got = pd.concat(frames, ignore_index=True)
    assert _ts_us(got["ts"]) == _ts_us(whole["ts"])
    assert set(got["symbol"].astype(str)) == {symbol}
    assert got["close"].tolist() == whole["close"].tolist()


async def test_fetch_over_the_budget_fails_before_reading_and_names_the_batch_api(
    coordinator: RunningCoordinator, questdb_url: str
) -> None:
    with socket.socket() as sock:  # a port nothing listens on: a read there would fail otherwise
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    s = settings(coordinator, dead, strategy="fail_fast", max_fetch_rows=100)
    async with AsyncSeamlessProvider(s) as p:
        with pytest.raises(InvalidArgument) as info:
            await p.read(T0, T0 + 120 * MIN, node_id="BIG")
    text = str(info.value)
    assert "max_fetch_rows = 100" in text and "iter_batches" in text and "120 bars" in text
    by_bytes = s.with_overrides(max_fetch_rows=10_000, max_fetch_bytes=4_800)
    async with AsyncSeamlessProvider(by_bytes) as p:
        with pytest.raises(InvalidArgument, match="max_fetch_bytes = 4,800"):
            await p.read(T0, T0 + 120 * MIN, node_id="BIG")


async def test_refused_storage_is_retried_until_the_deadline_then_named(unique: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    s = SeamlessSettings(
        questdb_url=dead,
        table=f"refused_{unique}",
        dataset=f"refused_{unique}",
        strategy="fail_fast",
        pgwire_max_rows=0,
        sla={"storage_deadline_ms": 400, "total_deadline_ms": 5_000},
    )
    async with AsyncSeamlessProvider(s) as p:
        with pytest.raises(SeamlessSLAExceeded) as info:
            await p.read(T0, T0 + 10 * MIN, node_id="X")
    assert info.value.stage == "storage" and "storage was saturated" in str(info.value)
