"""Reconcile: rebuild the coverage of a range from what QuestDB really holds.

QuestDB counts the series' rows per chunk cell (one grouped query over HTTP ``/exec``); each cell
with rows becomes covered (clipped to the range and the settled edge), every other part of the
range stops being covered. The rewrite of the coverage is one script.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from seamfill.coordinator import planner
from seamfill.coordinator.store import Store
from seamfill.sdk import ranges
from seamfill.sdk.errors import StorageError
from seamfill.sdk.types import Series, TimeRange

if TYPE_CHECKING:
    from seamfill.sdk.sink import QuestDBSink


@dataclass(frozen=True, slots=True)
class Reconciled:
    covered: list[TimeRange]
    removed: list[TimeRange]
    added: list[TimeRange]
    rows: int


async def cells_with_rows(
    sink: QuestDBSink, table: str, symbol: str, r: TimeRange, span: int
) -> dict[int, int]:
    """Rows per cell start of ``symbol`` in ``r``. A missing table holds no rows."""
    from seamfill.sdk._sql import quote_literal

    sql = (
        f'SELECT cast(ts AS LONG) / {int(span)} AS cell, count() AS n FROM "{table}" '
        f"WHERE symbol = {quote_literal(symbol)} AND ts >= {int(r.start_us)} "
        f"AND ts < {int(r.end_us)}"
    )
    try:
        body = await sink.exec(sql)
    except StorageError as e:
        if "does not exist" in str(e):
            return {}
        raise
    return {int(cell) * span: int(n) for cell, n in body.get("dataset", [])}


async def reconcile(store: Store, series: Series, r: TimeRange) -> Reconciled:
    """Replace the coverage of ``r`` by the cells QuestDB holds rows in."""
    ds = store.dataset(series.dataset)
    planner.check_range(r, ds, max_chunks=store.config.max_job_chunks * 10)
    # Imported here: the sink needs pandas, which a replica loads only if it ever reconciles.
    from seamfill.sdk.sink import QuestDBSink

    storage = store.config.storage_for(ds)
    span = ds.chunk_span_us
    async with QuestDBSink(storage.http) as sink:
        counts = await cells_with_rows(sink, ds.table, series.symbol, r, span)
    edge = min(r.end_us, ds.settled_until(store.clock()))
    held = ranges.merge(
        TimeRange(max(cell, r.start_us), min(cell + span, edge))
        for cell in counts
        if max(cell, r.start_us) < min(cell + span, edge)
    )
    before = await store.covered(series, r)
    args: list[object] = [r.start_us, r.end_us]
    for h in held:
        args += [h.start_us, h.end_us]
    await store.scripts.dataset(
        "reconcile",
        ds.name,
        store.clock(),
        keys=[store.keys.coverage(ds.name, series.symbol)],
        args=args,
    )
    after = await store.covered(series, r)
    removed = [g for b in before for g in ranges.subtract(b, after)]
    added = [g for a in after for g in ranges.subtract(a, before)]
    return Reconciled(covered=after, removed=removed, added=added, rows=sum(counts.values()))
