"""Materialize against the real QuestDB: ten series over thirty days into Parquet with manifests,
a second run that writes nothing, and reads served from the artifacts with the same fingerprint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from seamfill.sdk import AsyncSeamlessProvider, ComputeContext, SeamlessSettings, SyntheticFetcher
from seamfill.sdk.materialize import materialize
from seamfill.sdk.read.artifacts import ArtifactRegistry
from tests.sdk_support import T0, count, drop_table

pytestmark = pytest.mark.integration

HOUR = 3_600_000_000
DAYS_30 = 30 * 24 * HOUR
SYMBOLS = [f"S{i}/USDT" for i in range(10)]


@pytest.fixture
def table(questdb_url: str, unique: str) -> Iterator[str]:
    name = f"mat_{unique}"
    yield name
    drop_table(questdb_url, name)


def settings(url: str, table: str, **kw: object) -> SeamlessSettings:
    return SeamlessSettings(
        questdb_url=url, table=table, dataset=table, interval="1h", strategy="auto_backfill", **kw
    )


async def test_ten_series_thirty_days_to_parquet_then_nothing_then_same_reads(
    questdb_url: str, table: str, tmp_path: Path
) -> None:
    out = tmp_path / "artifacts"
    async with AsyncSeamlessProvider(settings(questdb_url, table), fetcher=SyntheticFetcher()) as p:
        first = await materialize(p, SYMBOLS, T0, T0 + DAYS_30, out)
        assert len(first.written) == 10 and not first.skipped
        assert first.rows_written == 10 * 720
        before = {f: f.stat().st_mtime_ns for f in out.rglob("*") if f.is_file()}
        second = await materialize(p, SYMBOLS, T0, T0 + DAYS_30, out)
        assert not second.written and len(second.skipped) == 10
        assert {f: f.stat().st_mtime_ns for f in out.rglob("*") if f.is_file()} == before
        as_of = first.written[0].as_of_us
        from_db = {}
        for art in first.written:
            ctx = ComputeContext(execution_domain="backtest", as_of=art.as_of_us)
            r = await p.read(T0, T0 + DAYS_30, node_id=art.series.symbol, context=ctx)
            from_db[art.series.symbol] = r
    assert all(count(questdb_url, table, s) == 720 for s in SYMBOLS)

    manifest = json.loads((first.written[0].path / "manifest.json").read_text())
    assert manifest["rows"] == 720 and manifest["range"] == [T0, T0 + DAYS_30]
    assert manifest["conformance"]["rows_out"] == 720 and manifest["conformance_version"] == "2"
    assert manifest["fingerprint"]["rows"] == 720 and as_of > 0
    assert len(list(ArtifactRegistry(out).artifacts())) == 10

    served = settings(questdb_url, table, artifacts_dir=str(out))
    async with AsyncSeamlessProvider(served) as p:
        for symbol, db in from_db.items():
            r = await p.read(T0, T0 + DAYS_30, node_id=symbol)
            assert r.meta.source == "artifact" and r.meta.artifact
            assert r.frame.equals(db.frame)
            assert r.meta.fingerprint is not None and db.meta.fingerprint is not None
            assert r.meta.fingerprint.sha256 == db.meta.fingerprint.sha256
        part = await p.read(T0 + 24 * HOUR, T0 + 48 * HOUR, node_id=SYMBOLS[0])
    assert part.meta.source == "artifact" and len(part.frame) == 24


async def test_an_interrupted_run_resumes_with_the_series_left(
    questdb_url: str, table: str, tmp_path: Path
) -> None:
    out = tmp_path / "artifacts"
    async with AsyncSeamlessProvider(settings(questdb_url, table), fetcher=SyntheticFetcher()) as p:
        first = await materialize(p, SYMBOLS[:3], T0, T0 + 48 * HOUR, out)
        (first.written[1].path / "manifest.json").unlink()  # as if the run had died there
        again = await materialize(p, SYMBOLS[:3], T0, T0 + 48 * HOUR, out)
    assert [a.series.symbol for a in again.written] == [first.written[1].series.symbol]
    assert len(again.skipped) == 2
