"""Pure interval arithmetic over half-open integer ranges ``[start, end)``.

No I/O, no clock: everything the coordinator and SDK compute about coverage, gaps and chunks is
here, so it can be checked with properties rather than servers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from seamfill.core.types import TimeRange


def merge(ranges: Iterable[TimeRange]) -> list[TimeRange]:
    """Coalesce ranges: sorted, disjoint, and touching ranges joined (``[0,5)+[5,9) = [0,9)``)."""
    out: list[TimeRange] = []
    for r in sorted((r for r in ranges if r.end_us > r.start_us), key=lambda r: r.start_us):
        if out and r.start_us <= out[-1].end_us:
            if r.end_us > out[-1].end_us:
                out[-1] = TimeRange(out[-1].start_us, r.end_us)
        else:
            out.append(r)
    return out


def subtract(whole: TimeRange, covered: Iterable[TimeRange]) -> list[TimeRange]:
    """The parts of ``whole`` that no range in ``covered`` touches (the gaps)."""
    gaps: list[TimeRange] = []
    cursor = whole.start_us
    for c in merge(covered):
        if c.end_us <= cursor:
            continue
        if c.start_us >= whole.end_us:
            break
        if c.start_us > cursor:
            gaps.append(TimeRange(cursor, c.start_us))
        cursor = max(cursor, c.end_us)
    if cursor < whole.end_us:
        gaps.append(TimeRange(cursor, whole.end_us))
    return gaps


def intersect(a: TimeRange, ranges: Iterable[TimeRange]) -> list[TimeRange]:
    """Each of ``ranges`` clipped to ``a``; empty results dropped."""
    out = []
    for r in ranges:
        s, e = max(a.start_us, r.start_us), min(a.end_us, r.end_us)
        if s < e:
            out.append(TimeRange(s, e))
    return out


def total(ranges: Iterable[TimeRange]) -> int:
    """Length covered by the union of ``ranges``."""
    return sum(r.end_us - r.start_us for r in merge(ranges))


def align_down(ts: int, step: int) -> int:
    """The grid point at or before ``ts`` (grid anchored at the epoch)."""
    return ts - (ts % step)


def align_up(ts: int, step: int) -> int:
    """The grid point at or after ``ts``."""
    return -align_down(-ts, step)


def is_aligned(r: TimeRange, step: int) -> bool:
    return r.start_us % step == 0 and r.end_us % step == 0


def align_outward(r: TimeRange, step: int) -> TimeRange:
    """The smallest grid-aligned range containing ``r``."""
    return TimeRange(align_down(r.start_us, step), align_up(r.end_us, step))


def chunk_cells(gaps: Iterable[TimeRange], span: int) -> Iterator[tuple[int, TimeRange]]:
    """Split gaps into chunks on a grid of cells ``span`` long.

    Yields ``(cell_start, range)`` once per cell that any gap touches, where ``range`` is the
    hull of the gap parts inside that cell. Chunk identity is (series, cell_start), so two
    overlapping requests for the same gap get the same chunks.
    """
    by_cell: dict[int, TimeRange] = {}
    for g in merge(gaps):
        cell = align_down(g.start_us, span)
        while cell < g.end_us:
            part = TimeRange(max(g.start_us, cell), min(g.end_us, cell + span))
            prev = by_cell.get(cell)
            by_cell[cell] = part if prev is None else TimeRange(prev.start_us, part.end_us)
            cell += span
    for cell in sorted(by_cell):
        yield cell, by_cell[cell]
