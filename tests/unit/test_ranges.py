"""Properties of the range arithmetic (merge, subtract, intersect, align, chunk_cells)."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from seamfill.core import ranges
from seamfill.core.types import TimeRange

COORD = st.integers(min_value=0, max_value=600)


@st.composite
def time_ranges(draw: st.DrawFn) -> TimeRange:
    a, b = draw(COORD), draw(COORD)
    return TimeRange(min(a, b), max(a, b))


RANGE_LISTS = st.lists(time_ranges(), max_size=12)


def points(rs: list[TimeRange]) -> set[int]:
    return {t for r in rs for t in range(r.start_us, r.end_us)}


@settings(max_examples=200)
@given(RANGE_LISTS)
def test_merge_is_sorted_disjoint_not_touching_and_keeps_every_point(rs: list[TimeRange]) -> None:
    m = ranges.merge(rs)
    assert points(m) == points(rs)
    assert all(not r.empty for r in m)
    for a, b in itertools.pairwise(m):
        assert a.end_us < b.start_us  # touching ranges are joined
    assert ranges.merge(m) == m


@settings(max_examples=200)
@given(time_ranges(), RANGE_LISTS)
def test_subtract_is_the_complement_within_whole(whole: TimeRange, rs: list[TimeRange]) -> None:
    gaps = ranges.subtract(whole, rs)
    assert points(gaps) == points([whole]) - points(rs)
    assert ranges.merge(gaps) == gaps


@settings(max_examples=200)
@given(time_ranges(), RANGE_LISTS)
def test_intersect_clips_to_the_range(a: TimeRange, rs: list[TimeRange]) -> None:
    assert points(ranges.intersect(a, rs)) == points([a]) & points(rs)


@settings(max_examples=200)
@given(time_ranges(), RANGE_LISTS)
def test_covered_plus_gaps_is_whole(whole: TimeRange, rs: list[TimeRange]) -> None:
    covered = ranges.merge(ranges.intersect(whole, rs))
    gaps = ranges.subtract(whole, covered)
    assert ranges.total(covered) + ranges.total(gaps) == whole.duration_us
    assert ranges.merge([*covered, *gaps]) == ([whole] if not whole.empty else [])


@given(
    st.integers(min_value=-(10**12), max_value=10**12), st.integers(min_value=1, max_value=10**7)
)
def test_align_down_and_up_bracket_the_point(ts: int, step: int) -> None:
    lo, hi = ranges.align_down(ts, step), ranges.align_up(ts, step)
    assert lo % step == 0 and hi % step == 0
    assert lo <= ts <= hi and hi - lo in ((0, step) if ts % step == 0 else (step,))


@given(time_ranges(), st.integers(min_value=1, max_value=500))
def test_align_outward_contains_and_is_aligned(r: TimeRange, step: int) -> None:
    out = ranges.align_outward(r, step)
    assert ranges.is_aligned(out, step)
    assert out.start_us <= r.start_us and out.end_us >= r.end_us
    assert out.start_us > r.start_us - step and out.end_us < r.end_us + step


@settings(max_examples=200)
@given(RANGE_LISTS, st.integers(min_value=1, max_value=700))
def test_chunk_cells_one_per_cell_within_the_cell_and_cover_the_gaps(
    gaps: list[TimeRange], span: int
) -> None:
    cells = list(ranges.chunk_cells(gaps, span))
    starts = [c for c, _ in cells]
    assert starts == sorted(set(starts))
    for cell, r in cells:
        assert cell % span == 0
        assert cell <= r.start_us < r.end_us <= cell + span
    # every gap point is in exactly one chunk; a chunk is the hull of its cell's gap parts
    assert points(gaps) <= points([r for _, r in cells])
    for cell, r in cells:
        parts = ranges.intersect(TimeRange(cell, cell + span), ranges.merge(gaps))
        assert r == TimeRange(parts[0].start_us, parts[-1].end_us)


@given(RANGE_LISTS, RANGE_LISTS, st.integers(min_value=1, max_value=300))
def test_overlapping_requests_get_the_same_chunk_ids(
    a: list[TimeRange], b: list[TimeRange], span: int
) -> None:
    ids_a = {c for c, _ in ranges.chunk_cells(a, span)}
    ids_b = {c for c, _ in ranges.chunk_cells(b, span)}
    for t in points(a) & points(b):
        assert ranges.align_down(t, span) in ids_a & ids_b
