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
