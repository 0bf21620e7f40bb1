"""Coverage reads against a real Redis: every read path of ``Store.coverage`` and
``Store.covered`` gives the answer of a plain reference read (the whole coverage set, then the
chunk of every gap cell).

The paths: a range of few cells reads its coverage and probes its cells for chunks in one round
trip (then reads the chunks of its gap cells only if one exists); a range of many cells reads its
coverage, then the chunks of its gap cells; a coverage read that meets more intervals than one
page is read again in full.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seamfill.coordinator import store as store_module
from seamfill.coordinator.keys import Keys
from seamfill.coordinator.leasing import Leasing
from seamfill.coordinator.store import Store
from seamfill.core import ranges
from seamfill.core.types import Coverage, Priority, Series, TimeRange
from tests.coordinator_fixtures import TEST_DATASET, build_config, test_dataset_spec

MIN = 60_000_000
CHUNK_BARS = 5
SPAN = CHUNK_BARS * MIN
NOW = 1_000_000 * MIN
STATES = ("queued", "backoff", "parked", "leased", "dead")
pytestmark = pytest.mark.integration


@dataclass
class Env:
    store: Store
    r: redis.Redis
    keys: Keys


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[redis.Redis]:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    yield r
    r.close()


@pytest.fixture
async def env(redis_url: str, key_prefix: str, sync_redis: redis.Redis) -> AsyncIterator[Env]:
    spec = {**test_dataset_spec(), "chunk_bars": CHUNK_BARS}
    cfg = build_config(redis_url, key_prefix, {TEST_DATASET: spec})
    store = Store(cfg, clock=lambda: NOW)
    yield Env(store, sync_redis, Keys(key_prefix))
    await store.close()


def put_coverage(e: Env, symbol: str, intervals: list[TimeRange]) -> None:
    """The coverage set as the scripts keep it: member "start:end", score end."""
    key = e.keys.coverage(TEST_DATASET, symbol)
    e.r.delete(key)
    if intervals:
        e.r.zadd(key, {f"{i.start_us}:{i.end_us}": i.end_us for i in intervals})


def put_chunk(e: Env, symbol: str, cell: int, state: str, part: TimeRange) -> None:
    key = e.keys.chunk(TEST_DATASET, f"{symbol}@{cell}")
    e.r.hset(key, mapping={"state": state, "s": part.start_us, "e": part.end_us})


def _runs(minutes: list[int]) -> tuple[TimeRange, ...]:
    """Runs of consecutive minutes (sorted starts) as ranges."""
    out: list[TimeRange] = []
    for m in minutes:
        if out and out[-1].end_us == m:
            out[-1] = TimeRange(out[-1].start_us, m + MIN)
        else:
            out.append(TimeRange(m, m + MIN))
    return tuple(out)


def reference(e: Env, series: Series, r: TimeRange) -> Coverage:
    """The answer worked out minute by minute from the raw keys, with none of the store's
    interval arithmetic: a minute is covered if a coverage member holds it; a chunk is
    reported if its cell holds an uncovered minute of ``r``, for the minutes of ``r`` it spans."""
    held: set[int] = set()
    for member in e.r.zrange(e.keys.coverage(TEST_DATASET, series.symbol), 0, -1):
        start, end = (int(x) for x in member.split(":"))
        held.update(range(start, end, MIN))
    minutes = range(r.start_us, r.end_us, MIN)
    open_cells = {m - m % SPAN for m in minutes if m not in held}
    queued: set[int] = set()
    leased: set[int] = set()
    for cell in sorted(open_cells):
        state, s, end = e.r.hmget(
            e.keys.chunk(TEST_DATASET, f"{series.symbol}@{cell}"), "state", "s", "e"
        )
        into = {"queued": queued, "backoff": queued, "parked": queued, "leased": leased}
        if state in into:
            into[state].update(m for m in range(int(s), int(end), MIN) if m in minutes)
    ds = e.store.dataset(TEST_DATASET)
    return Coverage(
        series=series,
        range=r,
        covered=_runs([m for m in minutes if m in held]),
        gaps=_runs([m for m in minutes if m not in held]),
        queued=_runs(sorted(queued)),
        leased=_runs(sorted(leased)),
        as_of_us=NOW,
        settled_until_us=ds.settled_until(NOW),
    )


def cells_of(r: TimeRange) -> int:
    return ranges.align_outward(r, SPAN).duration_us // SPAN


def every_other_bar(first: int, n: int) -> list[TimeRange]:
    return [TimeRange((first + 2 * i) * MIN, (first + 2 * i + 1) * MIN) for i in range(n)]


async def test_few_cells_without_chunks(env: Env) -> None:
    s = Series(TEST_DATASET, "FEW")
    put_coverage(env, "FEW", every_other_bar(100, 10))
    r = TimeRange(100 * MIN, 120 * MIN)
    assert cells_of(r) <= store_module._PROBED_CELLS
    cov = await env.store.coverage(s, r)
    assert cov == reference(env, s, r)
    assert len(cov.covered) == 10 and len(cov.gaps) == 10
    assert cov.queued == () and cov.leased == ()


async def test_few_cells_with_chunks_in_gaps_and_covered_cells(env: Env) -> None:
    s = Series(TEST_DATASET, "FEWC")
    put_coverage(env, "FEWC", [TimeRange(0, 10 * MIN), TimeRange(15 * MIN, 17 * MIN)])
    put_chunk(env, "FEWC", 0, "leased", TimeRange(0, 5 * MIN))  # a covered cell: not reported
    put_chunk(env, "FEWC", 10 * MIN, "queued", TimeRange(10 * MIN, 15 * MIN))
    put_chunk(env, "FEWC", 15 * MIN, "leased", TimeRange(17 * MIN, 20 * MIN))
    put_chunk(env, "FEWC", 20 * MIN, "dead", TimeRange(20 * MIN, 25 * MIN))
    r = TimeRange(0, 30 * MIN)
    cov = await env.store.coverage(s, r)
    assert cov == reference(env, s, r)
    assert cov.queued == (TimeRange(10 * MIN, 15 * MIN),)
    assert cov.leased == (TimeRange(17 * MIN, 20 * MIN),)


async def test_more_intervals_than_one_page_are_read_in_full(env: Env) -> None:
    s = Series(TEST_DATASET, "PAGE")
    n = store_module._COVERED_PAGE + 20
    put_coverage(env, "PAGE", every_other_bar(0, n))
    put_chunk(env, "PAGE", 10 * SPAN, "queued", TimeRange(10 * SPAN + MIN, 10 * SPAN + 2 * MIN))
    r = TimeRange(0, 2 * n * MIN + 3 * MIN)
    assert cells_of(r) <= store_module._PROBED_CELLS
    cov = await env.store.coverage(s, r)
    assert cov == reference(env, s, r)
    assert len(cov.covered) == n and cov.queued
    assert await env.store.covered(s, r) == list(cov.covered)


async def test_many_cells_read_coverage_then_gap_chunks(env: Env) -> None:
    s = Series(TEST_DATASET, "WIDE")
    cells = 2 * store_module._PROBED_CELLS + 10
    a, b = cells // 4, cells // 2  # the gap [a, b) between two covered stretches
    put_coverage(env, "WIDE", [TimeRange(0, a * SPAN), TimeRange(b * SPAN, cells * SPAN)])
    put_chunk(env, "WIDE", 1 * SPAN, "queued", TimeRange(1 * SPAN, 2 * SPAN))  # covered cell
    put_chunk(env, "WIDE", a * SPAN, "leased", TimeRange(a * SPAN, (a + 1) * SPAN))
    put_chunk(env, "WIDE", (a + 2) * SPAN, "parked", TimeRange((a + 2) * SPAN, (a + 3) * SPAN))
    r = TimeRange(0, cells * SPAN)
    assert cells_of(r) > store_module._PROBED_CELLS
    cov = await env.store.coverage(s, r)
    assert cov == reference(env, s, r)
    assert cov.leased == (TimeRange(a * SPAN, (a + 1) * SPAN),)
    assert cov.queued == (TimeRange((a + 2) * SPAN, (a + 3) * SPAN),)


async def test_chunks_planned_and_leased_by_the_scripts(env: Env) -> None:
    s = Series(TEST_DATASET, "LIVE")
    narrow = TimeRange(0, 4 * SPAN)
    wide = TimeRange(0, (store_module._PROBED_CELLS + 10) * SPAN)
    assert await env.store.ensure(s, wide, Priority.NORMAL) is not None
    got = await Leasing(env.store).acquire("w1", [env.store.dataset(TEST_DATASET)], 2)
    assert len(got.leases) == 2
    for r in (narrow, wide):
        cov = await env.store.coverage(s, r)
        assert cov == reference(env, s, r)
        assert cov.leased == (TimeRange(0, 2 * SPAN),)
        assert cov.queued == (TimeRange(2 * SPAN, r.end_us),)


BARS = 400
CELLS = BARS // CHUNK_BARS


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[list[TimeRange], list[tuple[int, str, TimeRange]], TimeRange]:
    # Coverage as the set keeps it: coalesced runs of covered bars, often more than one page.
    bits = draw(st.lists(st.booleans(), min_size=BARS, max_size=BARS))
    intervals: list[TimeRange] = []
    for bar, covered in enumerate(bits):
        if covered and intervals and intervals[-1].end_us == bar * MIN:
            intervals[-1] = TimeRange(intervals[-1].start_us, (bar + 1) * MIN)
        elif covered:
            intervals.append(TimeRange(bar * MIN, (bar + 1) * MIN))
    chunks = []
    for cell in draw(st.lists(st.integers(0, CELLS - 1), max_size=30, unique=True)):
        a = draw(st.integers(0, CHUNK_BARS - 1))
        b = draw(st.integers(a + 1, CHUNK_BARS))
        part = TimeRange(cell * SPAN + a * MIN, cell * SPAN + b * MIN)
        chunks.append((cell * SPAN, draw(st.sampled_from(STATES)), part))
    start = draw(st.integers(0, BARS - 1))
    end = draw(st.one_of(st.just(BARS), st.integers(start + 1, BARS)))
    return intervals, chunks, TimeRange(start * MIN, end * MIN)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(scenario=scenarios())
async def test_every_path_agrees_with_a_full_read(
    env: Env, scenario: tuple[list[TimeRange], list[tuple[int, str, TimeRange]], TimeRange]
) -> None:
    intervals, chunks, r = scenario
    chunk_keys = [env.keys.chunk(TEST_DATASET, f"H@{c * SPAN}") for c in range(CELLS + 1)]
    env.r.delete(*chunk_keys)
    put_coverage(env, "H", intervals)
    for cell, state, part in chunks:
        put_chunk(env, "H", cell, state, part)
    s = Series(TEST_DATASET, "H")
    want = reference(env, s, r)
    assert await env.store.covered(s, r) == list(want.covered)
    # The same data through both paths: probed (every range here spans at most CELLS) and wide.
    probed = store_module._PROBED_CELLS
    try:
        for limit in (CELLS, 0):
            store_module._PROBED_CELLS = limit
            assert await env.store.coverage(s, r) == want
    finally:
        store_module._PROBED_CELLS = probed
