"""Pure planning rules and key naming: chunks per cell, the settled edge, range checks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seamfill.coordinator import planner
from seamfill.coordinator.keys import ChunkRef, Keys, split_job_id
from seamfill.core import errors
from seamfill.core.types import Dataset, TimeRange

MIN = 60_000_000
DS = Dataset(name="d.x", table="t", source="s", interval_us=MIN, chunk_bars=60)


def test_plan_one_chunk_per_cell_skipping_covered() -> None:
    r = TimeRange(0, 180 * MIN)
    chunks = planner.plan(r, [TimeRange(60 * MIN, 120 * MIN)], DS, now_us=10**15)
    assert [(c.cell_us, c.range) for c in chunks] == [
        (0, TimeRange(0, 60 * MIN)),
        (120 * MIN, TimeRange(120 * MIN, 180 * MIN)),
    ]


def test_the_forming_edge_is_never_planned() -> None:
    ds = Dataset(
        name="d.x", table="t", source="s", interval_us=MIN, chunk_bars=60, settle_us=2 * MIN
    )
    now = 100 * MIN + 30_000_000  # inside bar 100
    part = planner.plannable(TimeRange(0, 200 * MIN), ds, now)
    assert part == TimeRange(0, 98 * MIN)
    assert planner.plannable(TimeRange(99 * MIN, 200 * MIN), ds, now) is None


def test_check_range_messages_name_the_fix() -> None:
    with pytest.raises(errors.InvalidRange, match=r"use \[0, 3660000000\)"):
        planner.check_range(TimeRange(1, 61 * MIN), DS)
    with pytest.raises(errors.InvalidRange, match="split it"):
        planner.check_range(TimeRange(0, 6000 * MIN), DS, max_chunks=10)


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**4))
def test_job_rates_are_finite_and_eta_unknown_before_progress(
    rows: int, done: int, total: int
) -> None:
    rate, eta = planner.job_rates(rows, done, total, 10.0)
    assert rate == rows / 10.0
    assert (eta == -1.0) if done == 0 else eta >= 0


@given(
    st.text(min_size=1, max_size=40).filter(lambda s: "\x00" not in s), st.integers(0, 4 * 10**15)
)
def test_chunk_ids_round_trip_any_symbol(symbol: str, cell: int) -> None:
    ref = ChunkRef("d.x", symbol, cell)
    assert ChunkRef.parse(ref.chunk_id) == ref
    assert ChunkRef.from_local("d.x", ref.local) == ref


def test_keys_share_the_dataset_slot_whatever_the_symbol() -> None:
    k = Keys("sf:")
    for key in (
        k.coverage("d.x", "{evil}"),
        k.chunk("d.x", "a}b@0"),
        k.ready("d.x"),
        k.job("d.x", "abc"),
    ):
        assert key.startswith("sf:{d.x}:")
    with pytest.raises(errors.InvalidArgument):
        Keys("sf{")


def test_job_and_lease_ids_are_checked() -> None:
    assert split_job_id("d.x:abc") == ("d.x", "abc")
    with pytest.raises(errors.JobNotFound):
        split_job_id("nocolon")
    with pytest.raises(errors.LeaseNotFound):
        ChunkRef.parse("d.x/BTC@notanumber")


def test_pure_modules_import_no_io() -> None:
    import subprocess
    import sys

    code = (
        "import sys, seamfill.coordinator.planner, seamfill.coordinator.keys, "
        "seamfill.core.ranges\n"
        "bad = [m for m in ('redis', 'grpc', 'asyncio', 'psycopg') if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
