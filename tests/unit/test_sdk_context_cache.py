"""The execution context's validation and the cache's TTL, context keys and counters (pure)."""

from __future__ import annotations

import pandas as pd
import pytest

from seamfill.core.errors import ConfigError
from seamfill.core.types import Series, TimeRange
from seamfill.sdk import ComputeContext, ExecutionDomain, SeamlessSettings
from seamfill.sdk.read.cache import ReadCache

T0 = 1_704_067_200_000_000
MIN = 60_000_000


def test_a_context_converts_its_as_of_once_and_only_a_backtest_has_one() -> None:
    ctx = ComputeContext("w", "backtest", "2025-01-01T00:00:00Z")
    assert ctx.as_of == 1_735_689_600_000_000 and ctx.execution_domain is ExecutionDomain.BACKTEST
    assert ComputeContext(as_of=1_735_689_600_000_000, execution_domain="backtest").as_of == (
        1_735_689_600_000_000  # an int is microseconds, as the field says: no guessing
    )
    assert not ctx.may_read_edge and ComputeContext().may_read_edge
    with pytest.raises(ConfigError, match="only a backtest is pinned to an as-of"):
        ComputeContext(execution_domain="live", as_of="2025-01-01")
    with pytest.raises(ConfigError, match="execution_domain = 'paper' is not one of backtest"):
        ComputeContext(execution_domain="paper")
    with pytest.raises(ConfigError, match=r"context\.as_of_us is not a setting"):
        SeamlessSettings(context={"as_of_us": 1})


def frame(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"ts": pd.to_datetime([T0 + i * MIN for i in range(n)], unit="us", utc=True)}
    )


def test_entries_expire_after_the_ttl_and_keys_include_the_context() -> None:
    now = [100.0]
    cache = ReadCache(1_000_000, ttl_s=10.0, clock=lambda: now[0])
    s, rng = Series("d", "BTC"), TimeRange(T0, T0 + 10 * MIN)
    assert cache.put(s, rng, frame(10), complete=True, settled_until_us=rng.end_us, context="a")
    assert cache.get(s, rng, "b") is None  # another context
    hit = cache.get(s, TimeRange(T0, T0 + 5 * MIN), "a")
    assert hit is not None and len(hit) == 5
    now[0] = 111.0
    assert cache.get(s, rng, "a") is None
    assert (cache.stats.hits, cache.stats.misses, cache.stats.expired) == (1, 2, 1)
    assert cache.nbytes == 0 and len(cache) == 0
