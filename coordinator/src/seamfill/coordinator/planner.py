"""PURE planning: which chunks a request needs, and what a request may ask for.

No I/O and no clock: ``now_us`` comes in as an argument, so every rule here is checked by unit
tests and properties without a server.
"""

from __future__ import annotations

from dataclasses import dataclass

from seamfill.core import ranges
from seamfill.core.errors import InvalidRange
from seamfill.core.types import Dataset, TimeRange


@dataclass(frozen=True, slots=True)
class PlannedChunk:
    """One grid cell of a gap: ``cell_us`` names it, ``range`` is what must be fetched."""

    cell_us: int
    range: TimeRange


def check_range(
    r: TimeRange,
    dataset: Dataset,
    *,
    field: str = "range",
    max_chunks: int | None = None,
    aligned: bool = True,
) -> TimeRange:
    """Validate a requested range: non-empty, within time bounds, on the bar grid, not too large."""
    r.validate(field)
    step = dataset.interval_us
    if aligned and not ranges.is_aligned(r, step):
        lo, hi = ranges.align_outward(r, step).start_us, ranges.align_outward(r, step).end_us
        raise InvalidRange(
            f"{field} [{r.start_us}, {r.end_us}) is not aligned to the {step} us bar grid of "
            f"dataset {dataset.name!r}: use [{lo}, {hi})"
        )
    if max_chunks is not None:
        span = dataset.chunk_span_us
        cells = (ranges.align_up(r.end_us, span) - ranges.align_down(r.start_us, span)) // span
        if cells > max_chunks:
            raise InvalidRange(
                f"{field} spans {cells} chunks of dataset {dataset.name!r}, more than the "
                f"{max_chunks} one request may plan: split it into smaller ranges"
            )
    return r


def plannable(r: TimeRange, dataset: Dataset, now_us: int) -> TimeRange | None:
    """The part of ``r`` before the settled edge (the forming edge is never planned or covered)."""
    edge = dataset.settled_until(now_us)
    if r.start_us >= edge:
        return None
    return TimeRange(r.start_us, min(r.end_us, edge))


def plan(
    r: TimeRange, covered: list[TimeRange], dataset: Dataset, now_us: int
) -> list[PlannedChunk]:
    """Chunks for the gaps of ``r`` (given its ``covered`` parts), one per grid cell, in order."""
    part = plannable(r, dataset, now_us)
    if part is None:
        return []
    gaps = ranges.subtract(part, covered)
    return [
        PlannedChunk(cell, rng) for cell, rng in ranges.chunk_cells(gaps, dataset.chunk_span_us)
    ]


def job_rates(
    rows: int, chunks_done: int, chunks_total: int, elapsed_s: float
) -> tuple[float, float]:
    """(rows per second, ETA in seconds or -1 when unknown) of a job's progress so far."""
    if elapsed_s <= 0:
        return 0.0, -1.0
    rate = rows / elapsed_s
    if chunks_done <= 0:
        return rate, -1.0
    remaining = max(0, chunks_total - chunks_done)
    return rate, remaining * elapsed_s / chunks_done
