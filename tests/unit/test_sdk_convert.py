"""Coverage on the wire: what the coordinator sends is what the client reads back."""

from __future__ import annotations

from seamfill.core import wire as cv
from seamfill.core.types import Coverage, Dataset, Series, TimeRange

MIN = 60_000_000


def _coverage() -> Coverage:
    return Coverage(
        series=Series("binance.ohlcv_1m", "BTC/USDT"),
        range=TimeRange(0, 20 * MIN),
        covered=(TimeRange(0, MIN), TimeRange(2 * MIN, 3 * MIN)),
        gaps=(TimeRange(MIN, 2 * MIN), TimeRange(3 * MIN, 20 * MIN)),
        queued=(TimeRange(3 * MIN, 10 * MIN),),
        leased=(TimeRange(MIN, 2 * MIN), TimeRange(10 * MIN, 12 * MIN)),
        as_of_us=123,
        settled_until_us=456,
    )


def test_coverage_round_trips_with_and_without_its_dataset() -> None:
    cov = _coverage()
    ds = Dataset(
        name="binance.ohlcv_1m",
        table="ohlcv_1m",
        source="ccxt:binance",
        interval_us=MIN,
        options={"root": "/data"},
    )
    bare = cv.coverage_to_pb(cov)
    assert not bare.HasField("dataset")
    assert cv.coverage_from_pb(bare) == cov
    full = cv.coverage_to_pb(cov, ds)
    assert cv.coverage_from_pb(full) == cov
    assert cv.dataset_from_pb(full.dataset) == ds


def test_empty_coverage_lists_stay_empty() -> None:
    cov = Coverage(
        series=Series("d.x", "S"),
        range=TimeRange(0, MIN),
        covered=(),
        gaps=(TimeRange(0, MIN),),
        queued=(),
        leased=(),
        as_of_us=0,
        settled_until_us=0,
    )
    m = cv.coverage_to_pb(cov)
    assert len(m.covered) == len(m.queued) == len(m.leased) == 0
    assert cv.coverage_from_pb(m) == cov


def _full_objects() -> list[object]:
    from seamfill.core.types import (
        Chunk,
        ChunkState,
        Fingerprint,
        Job,
        JobProgress,
        JobState,
        Lease,
        Priority,
    )

    s = Series("d.x", "BTC/USDT")
    r = TimeRange(MIN, 5 * MIN)
    ds = Dataset(
        name="d.x",
        table="t",
        source="synthetic",
        interval_us=MIN,
        chunk_bars=7,
        settle_us=3,
        max_concurrency=2,
        kind="trades",
        storage="second",
        options={"a": "b"},
    )
    progress = JobProgress(3, 2, 1, 1, 99, 12.5, 4.0)
    chunk = Chunk("c1", s, r, ChunkState.BACKOFF, 2, "boom", 17, ("j1", "j2"))
    return [
        ds,
        progress,
        Job("j1", s, r, Priority.BULK, JobState.PAUSED, progress, "me", 1, 2, "err", "tp"),
        chunk,
        Lease("l1", 5, chunk, ds, 10, "w1", "tp", 8, 9, 11),
        Fingerprint(s, r, "ab" * 32, 42, 7, True, False, "pub", 43),
    ]


def test_every_mapping_round_trips_every_field() -> None:
    pairs = {
        "Dataset": (cv.dataset_to_pb, cv.dataset_from_pb),
        "JobProgress": (cv.progress_to_pb, cv.progress_from_pb),
        "Job": (cv.job_to_pb, cv.job_from_pb),
        "Chunk": (cv.chunk_to_pb, cv.chunk_from_pb),
        "Lease": (cv.lease_to_pb, cv.lease_from_pb),
        "Fingerprint": (cv.fingerprint_to_pb, cv.fingerprint_from_pb),
    }
    for obj in _full_objects():
        to_pb, from_pb = pairs[type(obj).__name__]
        assert from_pb(to_pb(obj)) == obj


def test_only_stated_domain_fields_stay_off_the_wire() -> None:
    """A field added to a domain type reaches the wire unless it is listed here on purpose."""
    import dataclasses

    from seamfill.v1 import common_pb2, coverage_pb2

    messages = {
        "Dataset": common_pb2.Dataset,
        "JobProgress": common_pb2.JobProgress,
        "Job": common_pb2.Job,
        "Chunk": common_pb2.Chunk,
        "Lease": common_pb2.Lease,
        "Fingerprint": coverage_pb2.Fingerprint,
    }
    off_the_wire = set()
    for obj in _full_objects():
        wire = set(messages[type(obj).__name__].DESCRIPTOR.fields_by_name)
        for f in dataclasses.fields(obj):  # type: ignore[arg-type]
            if f.name not in wire:
                off_the_wire.add(f"{type(obj).__name__}.{f.name}")
    # The symbol rule is the coordinator's to enforce; clients learn it from the refusal.
    assert off_the_wire == {"Fingerprint.early", "Dataset.symbol_pattern"}


def test_an_empty_dataset_kind_reads_as_bars() -> None:
    from seamfill.v1 import common_pb2

    assert cv.dataset_from_pb(common_pb2.Dataset(name="d", interval_us=MIN)).kind == "bars"
