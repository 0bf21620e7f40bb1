"""Ranges larger than memory: the covered bars of a range as bounded pieces.

:func:`iter_batches` asks for coverage once (and lets the strategy handle gaps, as a read does),
then reads the covered ranges in grid-aligned pieces of at most ``batch_rows`` bars, one piece in
memory at a time: a 10M-row range is processed in O(batch) memory. Each piece is read within the
storage deadline through the same exporter as :meth:`fetch` (retries, export slots, PGWire); the
total deadline bounds the coverage and backfill steps, not the whole iteration, whose length is
the caller's to decide. Without a coordinator, the pieces are whatever storage holds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from seamfill.core.errors import InvalidArgument, SeamlessSLAExceeded
from seamfill.core.timeconv import to_range
from seamfill.core.types import TimeRange
from seamfill.sdk.formats import check_output
from seamfill.sdk.read._parquet import arrow_to_pandas, arrow_with_symbol
from seamfill.sdk.read._steps import ReadState
from seamfill.sdk.read._storage_stage import bars_in

if TYPE_CHECKING:
    from seamfill.sdk.provider import AsyncSeamlessProvider


def pieces(rng: TimeRange, step_us: int) -> Iterator[TimeRange]:
    """``rng`` cut at every ``step_us`` from its start."""
    at = rng.start_us
    while at < rng.end_us:
        yield TimeRange(at, min(rng.end_us, at + step_us))
        at += step_us


async def _plan(provider: AsyncSeamlessProvider, st: ReadState, interval: Any) -> list[TimeRange]:
    if provider.settings.coordinator is None:
        dataset = provider._local_dataset(st.series, interval)
        st.set_dataset(dataset, dataset.settled_until(time.time_ns() // 1_000))
        return [st.hist] if not st.hist.empty else []
    await provider._plan(st, interval)
    if st.gaps:
        await provider._handle_gaps(st)
    return list(st.covered)


async def iter_batches(
    provider: AsyncSeamlessProvider,
    start: Any,
    end: Any,
    *,
    node_id: str,
    interval: Any = None,
    batch_rows: int = 100_000,
    output: str = "arrow",
) -> AsyncIterator[Any]:
    """Covered bars of ``node_id`` in ``[start, end)``, ``batch_rows`` bars at most per piece.

    ``output``: ``arrow`` (``pyarrow.RecordBatch``), ``pandas`` or ``polars`` frames. Pieces
    with no rows are skipped; rows come in time order, each bar once.
    """
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise InvalidArgument(f"batch_rows = {batch_rows!r} must be a positive int of bars")
    check_output(output)
    series = provider.series(node_id)
    settings = provider.settings
    rng = to_range(start, end, unit=settings.time_unit)
    st = ReadState.begin(series, rng, settings, settings.strategy)
    covered = await _plan(provider, st, interval)
    step = batch_rows * st.dataset.interval_us
    for rng in covered:
        for piece in pieces(rng, step):
            table = await _read_piece(provider, st, piece)
            if table.num_rows:
                yield _shape(table, series.symbol, output)


async def _read_piece(provider: AsyncSeamlessProvider, st: ReadState, rng: TimeRange) -> pa.Table:
    timeout = st.settings.sla.deadline_s("storage")
    deadline = None if timeout is None else time.monotonic() + timeout
    exporter = provider.exporter

    def read() -> pa.Table:
        table, _ = exporter.read(
            st.dataset.table,
            st.series.symbol,
            rng,
            rows_hint=bars_in(rng, st.dataset.interval_us),
            deadline=deadline,
        )
        return table

    try:
        return await asyncio.wait_for(asyncio.to_thread(read), timeout)
    except TimeoutError:
        raise SeamlessSLAExceeded(
            "storage", f"reading {st.series} over {rng} passed the storage deadline"
        ) from None


def _shape(table: pa.Table, symbol: str, output: str) -> Any:
    if output == "pandas":
        return arrow_to_pandas(table, symbol)
    with_symbol = arrow_with_symbol(table, symbol)
    if output == "polars":
        import polars as pl

        return pl.from_arrow(with_symbol)
    batches = with_symbol.combine_chunks().to_batches()
    return batches[0] if len(batches) == 1 else pa.concat_batches(batches)
