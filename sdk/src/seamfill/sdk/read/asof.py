"""Backtest reads pinned to an as-of: the same rows every time, or a hold that says why not.

How as-of is made true on QuestDB (no best effort):

1. **Ingestion watermark.** Every write through the sink (workers, inline fills) stamps each row's
   ``ingested_at`` with the writer's UTC time. An as-of read selects only rows with
   ``ingested_at <= as_of`` (rows of tables written before the column existed carry NULL and
   count as always there), and only bars settled by ``as_of``. Rows that land later in the same
   range — a gap filled after the as-of — are not seen.
2. **Published fingerprints.** The first as-of read of a (series, range, as-of) publishes its
   fingerprint to the coordinator (``PublishFingerprint``); every later one compares its own
   with the oldest published for that key (``GetFingerprints``). A row upserted after the as-of
   (``DEDUP UPSERT`` replaces it, with a new ``ingested_at``), deleted, or inserted without a
   watermark changes the digest, and the read HOLDs with ``as_of_regression``: no rows, the two
   digests in the reason.

As-of reads never backfill (a fill would land after the as-of and be invisible to it) and never
read the live edge. Without a coordinator the watermark still filters, but nothing can be
compared: the reason says ``as-of fingerprint not verified``. The coordinator keeps the newest
1,000 fingerprints of a series; a pin older than that is re-made, and the reason says so.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from seamfill.core.errors import (
    CoordinatorUnavailable,
    SeamfillError,
    StorageError,
    StorageSaturated,
)
from seamfill.core.timeconv import us_to_iso
from seamfill.core.types import Dataset, Fingerprint, TimeRange
from seamfill.sdk.context import ComputeContext
from seamfill.sdk.quality.conformance import BAR_COLUMNS
from seamfill.sdk.quality.fingerprint import fingerprint
from seamfill.sdk.read import holds
from seamfill.sdk.read._steps import ReadState, finish
from seamfill.sdk.read.storage import (
    StorageReader,
    _csv_frame,
    _parquet_frame,
    _table_missing,
    empty_bars,
    sql_string,
    sql_table,
    with_symbol,
)
from seamfill.sdk.result import SeamlessResult
from seamfill.sdk.sla import HoldMode

if TYPE_CHECKING:
    from seamfill.sdk.provider import AsyncSeamlessProvider

WATERMARK = "ingested_at"
KEPT = 1000
"""Fingerprints the coordinator keeps per series (newest first): how far back a pin is found."""


def as_of_query(table: str, symbol: str, rng: TimeRange, as_of_us: int) -> str:
    """Bars of ``symbol`` in ``rng`` that were ingested by ``as_of_us``."""
    cols = ", ".join(c for c in BAR_COLUMNS if c != "symbol")
    return (
        f"SELECT {cols} FROM {sql_table(table)} WHERE symbol = {sql_string(symbol)} "
        f"AND ts >= '{us_to_iso(rng.start_us)}' AND ts < '{us_to_iso(rng.end_us)}' "
        f"AND ({WATERMARK} IS NULL OR {WATERMARK} <= '{us_to_iso(as_of_us)}') ORDER BY ts"
    )


def _busy(e: StorageError) -> bool:
    text = str(e)
    return any(f"answered {code}" in text for code in (429, 503)) or "cannot be reached" in text


def _export(reader: StorageReader, query: str, slots: Any, deadline: float | None) -> bytes:
    """``/exp`` of ``query`` in one of the process's export slots, busy answers retried with
    jittered backoff until ``deadline`` (a monotonic instant)."""
    attempt = 0
    while True:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if slots is not None and not slots.acquire(timeout=30.0 if left is None else left):
            raise StorageSaturated("no export slot came free for an as-of read")
        try:
            return reader._request("exp", {"query": query, "fmt": "parquet"})
        except StorageError as e:
            pause = random.uniform(0, min(0.5, 0.02 * 2**attempt))
            if not _busy(e) or (deadline is not None and time.monotonic() + pause > deadline):
                raise
        finally:
            if slots is not None:
                slots.release()
        attempt += 1
        time.sleep(pause)


def read_bars_as_of(
    reader: StorageReader,
    table: str,
    symbol: str,
    rng: TimeRange,
    as_of_us: int,
    *,
    slots: Any = None,
    deadline: float | None = None,
) -> pd.DataFrame:
    """Rows of ``symbol`` in ``rng`` ingested by ``as_of_us``, ordered by ts."""
    if rng.empty:
        return empty_bars(symbol)
    query = as_of_query(table, symbol, rng, as_of_us)
    try:
        body = _export(reader, query, slots, deadline)
    except StorageError as e:
        if _table_missing(e):
            return empty_bars(symbol)
        if WATERMARK in str(e):
            raise StorageError(
                f"table {table!r} has no {WATERMARK} column, so an as-of read cannot tell when "
                f"rows arrived: run ALTER TABLE {table} ADD COLUMN {WATERMARK} TIMESTAMP (the "
                "sink adds it on its next write), or read without as_of"
            ) from e
        raise
    frame = _parquet_frame(body) if body[:4] == b"PAR1" else _csv_frame(body)
    return with_symbol(frame, symbol)


async def read_as_of(
    provider: AsyncSeamlessProvider, st: ReadState, ctx: ComputeContext, interval: Any
) -> SeamlessResult:
    """The read of ``st`` as of ``ctx.as_of``, checked against the published fingerprint."""
    assert ctx.as_of is not None
    as_of = ctx.as_of
    st.interval = interval
    dataset, fleet = await _dataset(provider, st, interval)
    now_us = time.time_ns() // 1_000
    st.set_dataset(dataset, min(dataset.settled_until(now_us), dataset.settled_until(as_of)))
    timeout = st.budget.remaining("storage", time.monotonic())
    deadline = None if timeout is None else time.monotonic() + timeout
    slots = getattr(getattr(provider, "exporter", None), "slots", None)
    with st.timed("storage"):
        st.frame = await asyncio.wait_for(
            asyncio.to_thread(
                functools.partial(
                    read_bars_as_of,
                    provider.storage,
                    dataset.table,
                    st.series.symbol,
                    st.hist,
                    as_of,
                    slots=slots,
                    deadline=deadline,
                )
            ),
            timeout,
        )
    st.storage_path = "http"
    st.local = True  # coverage is what was there by the as-of; finish() publishes nothing
    st.refresh_local([])
    result = await finish(provider, st)
    fp = fingerprint(result.frame, st.series, st.want, as_of)
    result = SeamlessResult(result.frame, replace(result.meta, fingerprint=fp))
    return await _verify(result, fleet, fp, st)


async def _dataset(
    provider: AsyncSeamlessProvider, st: ReadState, interval: Any
) -> tuple[Dataset, Any]:
    if provider.settings.coordinator is None:
        return provider._local_dataset(st.series, interval), None
    fleet = await provider._fleet_backend()
    timeout = st.budget.remaining("storage", time.monotonic())
    try:
        _, dataset = await fleet.coverage(st.series, st.rng, interval, timeout)
    except (CoordinatorUnavailable, TimeoutError) as e:
        known = provider._datasets.get(st.series.dataset)
        dataset = known if known is not None else provider._local_dataset(st.series, interval)
        st.degraded = True
        st.note(f"as-of fingerprint not verified: coordinator unavailable ({e})")
        return dataset, None
    provider._datasets[dataset.name] = dataset
    return dataset, fleet


async def _verify(
    result: SeamlessResult, fleet: Any, fp: Fingerprint, st: ReadState
) -> SeamlessResult:
    if fleet is None:
        if not st.degraded:
            st.note("as-of fingerprint not verified: no coordinator configured to hold it")
            result = SeamlessResult(result.frame, replace(result.meta, reason=st.reason))
        return result
    timeout = st.budget.remaining("total", time.monotonic())
    try:
        published = await asyncio.wait_for(
            fleet.client.get_fingerprints(st.series, limit=KEPT), timeout
        )
        pinned = [
            p
            for p in published
            if p.range == fp.range and p.as_of_us == fp.as_of_us and not p.preview
        ]
        if not pinned:
            await asyncio.wait_for(fleet.publish(fp), timeout)
            if len(published) >= KEPT:
                st.note(
                    f"as-of fingerprint pinned now: the coordinator keeps the newest {KEPT} "
                    "fingerprints of a series and an older pin may have been dropped"
                )
                meta = replace(result.meta, reason=st.reason)
                return SeamlessResult(result.frame, meta)
            return result
    except (SeamfillError, TimeoutError) as e:
        st.note(f"as-of fingerprint not verified: {type(e).__name__}: {e}")
        return SeamlessResult(result.frame, replace(result.meta, reason=st.reason, degraded=True))
    first = pinned[-1]  # the list is newest first: the oldest publication is the pin
    if first.sha256 == fp.sha256:
        return result
    why = (
        f"{st.series} over [{fp.range.start_us}, {fp.range.end_us}) as of {us_to_iso(fp.as_of_us)} "
        f"reads {fp.rows} row(s) with sha256 {fp.sha256[:16]}…, but {first.rows} row(s) with "
        f"sha256 {first.sha256[:16]}… were published for it: rows ingested by the as-of were "
        "changed or removed since"
    )
    return holds.apply(result, [(holds.AS_OF_REGRESSION, why)], HoldMode.HOLD)
