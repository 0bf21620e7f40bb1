"""The read cache keeps only settled, complete ranges within its byte budget; live stitching
adds only what history lacks; storage-derived coverage is exact at both ends."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seamfill.core.types import Series, TimeRange
from seamfill.sdk.read.cache import ReadCache, frame_bytes
from seamfill.sdk.read.live import stitch
from seamfill.sdk.read.storage import bars_query, covered_runs, sql_string

MIN = 60_000_000
T0 = 1_704_067_200_000_000
S = Series("d", "BTC")


def bars(n: int, start: int = T0, close: float = 1.0) -> pd.DataFrame:
    ts = start + np.arange(n, dtype=np.int64) * MIN
    return pd.DataFrame({"ts": pd.to_datetime(ts, unit="us", utc=True), "close": close})


def test_cache_serves_contained_ranges_of_complete_settled_reads() -> None:
    cache = ReadCache(10_000_000)
    full = TimeRange(T0, T0 + 100 * MIN)
    assert not cache.put(S, full, bars(100), complete=False, settled_until_us=full.end_us)
    assert not cache.put(S, full, bars(100), complete=True, settled_until_us=full.end_us - 1)
    assert cache.put(S, full, bars(100), complete=True, settled_until_us=full.end_us)
    part = cache.get(S, TimeRange(T0 + 10 * MIN, T0 + 20 * MIN))
    assert part is not None and len(part) == 10
    assert part["ts"].iloc[0].value // 1000 == T0 + 10 * MIN
    assert cache.get(S, TimeRange(T0, T0 + 101 * MIN)) is None
    assert cache.get(Series("d", "ETH"), full) is None


def test_cache_evicts_least_recently_used_by_bytes() -> None:
    size = frame_bytes(bars(100))
    cache = ReadCache(size * 2)
    ranges = [TimeRange(T0 + i * 100 * MIN, T0 + (i + 1) * 100 * MIN) for i in range(3)]
    for r in ranges[:2]:
        cache.put(S, r, bars(100, r.start_us), complete=True, settled_until_us=r.end_us)
    assert cache.get(S, ranges[0]) is not None  # touch: ranges[1] is now the oldest
    cache.put(
        S,
        ranges[2],
        bars(100, ranges[2].start_us),
        complete=True,
        settled_until_us=ranges[2].end_us,
    )
    assert cache.get(S, ranges[1]) is None and cache.get(S, ranges[0]) is not None
    assert cache.nbytes <= cache.max_bytes and len(cache) == 2


def test_stitch_appends_only_after_history() -> None:
    stored = bars(10)
    live = bars(5, T0 + 8 * MIN, close=2.0)  # overlaps the last two stored bars
    out = stitch(stored, live, edge_us=T0 + 10 * MIN)
    assert len(out) == 13 and out["ts"].is_unique
    assert (out["close"].iloc[:10] == 1.0).all() and (out["close"].iloc[10:] == 2.0).all()
    assert len(stitch(stored, bars(0), T0)) == 10


def test_covered_runs_keep_the_last_bar() -> None:
    ts = T0 + np.array([0, 1, 2, 5, 6], dtype=np.int64) * MIN
    assert covered_runs(ts, MIN) == [
        TimeRange(T0, T0 + 3 * MIN),
        TimeRange(T0 + 5 * MIN, T0 + 7 * MIN),
    ]
    assert covered_runs(np.array([], dtype=np.int64), MIN) == []


def test_symbols_cannot_escape_the_literal() -> None:
    hostile = "x' OR '1'='1"
    assert sql_string(hostile) == "'x'' OR ''1''=''1'"
    q = bars_query("t", hostile, TimeRange(T0, T0 + MIN))
    assert "symbol = 'x'' OR ''1''=''1'" in q and q.count("'") % 2 == 0


def test_storage_url_credentials_become_basic_auth() -> None:
    from seamfill.core.errors import InvalidArgument
    from seamfill.sdk.read.storage import StorageReader

    r = StorageReader.from_url("https://reader:p%40ss@db.example:9443")
    assert (r.url, r.username, r.password) == ("https://db.example:9443", "reader", "p@ss")
    assert StorageReader.from_url("http://127.0.0.1").url == "http://127.0.0.1:9000"
    with pytest.raises(InvalidArgument, match="questdb_url"):
        StorageReader.from_url("127.0.0.1:9000")
