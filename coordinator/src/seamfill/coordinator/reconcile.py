"""Reconcile: rebuild the coverage of a range from what QuestDB really holds.

QuestDB counts the series' rows per chunk cell (one grouped query over HTTP ``/exec``), and only
a cell storage holds *completely* becomes covered (clipped to the range and the settled edge):

- bars: every bar of the grid in the cell is there (distinct bar times == the cell's bars); a
  cell holding some of its bars is partial, left a gap, and the next EnsureRange fetches it
  again (the write is idempotent);
- trades (no grid to count against): storage cannot prove a cell complete, so the rule is that
  reconcile never adds trades coverage; it keeps what is covered where the cell still holds
  rows and drops the rest.

Every other part of the range stops being covered. The rewrite of the coverage is one script.
A storage error maps to its own status: QuestDB unreachable is UNAVAILABLE (retry), a query it
refuses (4xx) is FAILED_PRECONDITION.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis import exceptions as rexc

from seamfill.coordinator import planner
from seamfill.coordinator.scripts import translate
from seamfill.coordinator.store import Store
from seamfill.core import ranges
from seamfill.core.errors import StorageError
from seamfill.core.types import Dataset, Series, TimeRange

if TYPE_CHECKING:
    from seamfill.sdk.backfill.sink import QuestDBSink


@dataclass(frozen=True, slots=True)
class Reconciled:
    covered: list[TimeRange]
    removed: list[TimeRange]
    added: list[TimeRange]
    rows: int
    partial: list[TimeRange] = field(default_factory=list)
    """Cells holding rows but not all of them: left gaps."""


async def cells_with_rows(
    sink: QuestDBSink, table: str, symbol: str, r: TimeRange, span: int
) -> dict[int, tuple[int, int]]:
    """(rows, distinct times) per cell start of ``symbol`` in ``r``. A missing table holds
    no rows."""
    from seamfill.core._sql import quote_literal, quote_table

    sql = (
        f"SELECT cast(ts AS LONG) / {int(span)} AS cell, count() AS n, "
        f"count_distinct(cast(ts AS LONG)) AS d FROM {quote_table(table)} "
        f"WHERE symbol = {quote_literal(symbol)} AND ts >= {int(r.start_us)} "
        f"AND ts < {int(r.end_us)}"
    )
    rows = await _rows(sink, sql)
    return {int(cell) * span: (int(n), int(d)) for cell, n, d in rows}


async def _rows(sink: QuestDBSink, sql: str) -> list[list[Any]]:
    """The rows ``sql`` returns; none from a table that does not exist (yet)."""
    try:
        body = await sink.exec(sql)
    except StorageError as e:
        if "does not exist" in str(e):
            return []
        raise
    return list(body.get("dataset", []))


async def symbols_of(store: Store, dataset: str, r: TimeRange) -> list[str]:
    """The symbols of ``dataset`` storage holds rows of in ``r``, together with those that have
    coverage (which a reconcile may have to remove), sorted: what a dataset-wide reconcile
    goes through."""
    from seamfill.core._sql import quote_table
    from seamfill.sdk.backfill.sink import QuestDBSink

    ds = store.dataset(dataset, field="dataset")
    found: set[str] = set()
    sql = (
        f"SELECT DISTINCT symbol FROM {quote_table(ds.table)} "
        f"WHERE ts >= {int(r.start_us)} AND ts < {int(r.end_us)}"
    )
    async with QuestDBSink(store.config.storage_for(ds).http) as sink:
        found.update(str(row[0]) for row in await _rows(sink, sql) if row[0] is not None)
    head = store.keys.coverage(ds.name, "")
    try:
        async for key in store.redis.scan_iter(match=head + "*", count=1000):
            name = key.decode() if isinstance(key, bytes) else str(key)
            found.add(name[len(head) :])
    except (rexc.RedisError, OSError) as e:  # as the status it stands for
        raise translate(e) from e
    return sorted(found)


def _complete_cells(
    counts: dict[int, tuple[int, int]], ds: Dataset, r: TimeRange, edge: int
) -> tuple[list[TimeRange], list[TimeRange]]:
    """(complete, partial) windows of the cells with rows, clipped to ``[r.start, edge)``."""
    complete, partial = [], []
    for cell, (_, distinct) in sorted(counts.items()):
        lo, hi = max(cell, r.start_us), min(cell + ds.chunk_span_us, edge)
        if lo >= hi:
            continue
        window = TimeRange(lo, hi)
        expected = -(-hi // ds.interval_us) - -(-lo // ds.interval_us)
        if ds.kind != "bars" or distinct >= expected:
            complete.append(window)
        else:
            partial.append(window)
    return ranges.merge(complete), partial


def _intersect(a: list[TimeRange], b: list[TimeRange]) -> list[TimeRange]:
    out = []
    for x in a:
        for y in b:
            lo, hi = max(x.start_us, y.start_us), min(x.end_us, y.end_us)
            if lo < hi:
                out.append(TimeRange(lo, hi))
    return ranges.merge(out)


async def reconcile(store: Store, series: Series, r: TimeRange) -> Reconciled:
    """Replace the coverage of ``r`` by the cells QuestDB holds rows in."""
    ds = store.dataset(series.dataset)
    planner.check_range(r, ds, max_chunks=store.config.max_job_chunks * 10)
    # Imported here: the sink needs pandas, which a replica loads only if it ever reconciles.
    from seamfill.sdk.backfill.sink import QuestDBSink

    storage = store.config.storage_for(ds)
    span = ds.chunk_span_us
    edge = min(r.end_us, ds.settled_until(store.clock()))
    async with QuestDBSink(storage.http) as sink:
        counts = await cells_with_rows(
            sink, ds.table, series.symbol, TimeRange(r.start_us, max(r.start_us, edge)), span
        )
    held, partial = _complete_cells(counts, ds, r, edge)
    before = await store.covered(series, r)
    if ds.kind != "bars":
        held = _intersect(held, before)
    args: list[object] = [r.start_us, r.end_us]
    for h in held:
        args += [h.start_us, h.end_us]
    await store.scripts.dataset(
        "reconcile",
        ds.name,
        keys=[store.keys.coverage(ds.name, series.symbol)],
        args=args,
    )
    after = await store.covered(series, r)
    removed = [g for b in before for g in ranges.subtract(b, after)]
    added = [g for a in after for g in ranges.subtract(a, before)]
    rows = sum(n for n, _ in counts.values())
    return Reconciled(after, removed, added, rows, partial)
