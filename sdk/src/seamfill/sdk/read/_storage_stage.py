"""The storage stage of a read: the fetch budget, then the bars through :mod:`._export`.

Kept apart from the provider so each stays small. The blocking read runs on a thread with the
storage deadline as both its ``wait_for`` timeout and the exporter's own retry horizon, so a read
of a saturated QuestDB ends at the deadline with a breach that says storage was saturated.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time

import pandas as pd

from seamfill.core.errors import (
    InvalidArgument,
    SeamlessSLAExceeded,
    StorageError,
    StorageSaturated,
)
from seamfill.core.types import TimeRange
from seamfill.sdk.read._export import BarExporter, ExportPolicy
from seamfill.sdk.read._parquet import arrow_to_pandas
from seamfill.sdk.read._steps import ReadState
from seamfill.sdk.read.storage import StorageReader, _table_missing, empty_bars, with_symbol
from seamfill.sdk.settings import SeamlessSettings

BYTES_PER_BAR = 48
"""ts and five float64 prices; the symbol is a one-category categorical."""


def make_exporter(settings: SeamlessSettings, reader: StorageReader) -> BarExporter:
    # PGWire needs psycopg, the ``pgwire`` extra: without it, reads stay on HTTP.
    pgwire = settings.pgwire_max_rows > 0 and importlib.util.find_spec("psycopg") is not None
    policy = ExportPolicy(
        max_concurrent_exports=settings.max_concurrent_exports,
        pgwire_dsn=settings.pgwire_dsn if pgwire else None,
        pgwire_max_rows=settings.pgwire_max_rows,
    )
    auth = (reader.username, reader.password or "") if reader.username is not None else None
    return BarExporter(reader.url, policy, timeout_s=reader.timeout_s, auth=auth)


def bars_in(rng: TimeRange, interval_us: int) -> int:
    """The most bars ``rng`` can hold on an ``interval_us`` grid."""
    return -(-rng.duration_us // interval_us) if interval_us > 0 else 0


def check_fetch_budget(st: ReadState) -> None:
    """Fail before reading when the range may hold more than the settings' fetch budget."""
    s = st.settings
    bars = bars_in(st.hist, st.dataset.interval_us)
    over = []
    if bars > s.max_fetch_rows:
        over.append(f"{bars:,} bars > max_fetch_rows = {s.max_fetch_rows:,}")
    if bars * BYTES_PER_BAR > s.max_fetch_bytes:
        over.append(f"~{bars * BYTES_PER_BAR:,} bytes > max_fetch_bytes = {s.max_fetch_bytes:,}")
    if over:
        raise InvalidArgument(
            f"fetch of {st.series} over {st.hist} may return {'; '.join(over)}: read it in "
            "bounded pieces with provider.iter_batches(start, end, node_id=..., batch_rows=...), "
            "or raise the budget in SeamlessSettings"
        )


def read_frame(
    exporter: BarExporter, st: ReadState, rng: TimeRange, deadline: float | None
) -> pd.DataFrame:
    """The bars of ``rng`` as the provider's frame, noting how storage was read on ``st``."""
    if rng.empty:
        return empty_bars(st.series.symbol)
    try:
        data, how = exporter.read(
            st.dataset.table,
            st.series.symbol,
            rng,
            rows_hint=bars_in(rng, st.dataset.interval_us),
            deadline=deadline,
            frame=True,
        )
    except StorageError as e:
        if _table_missing(e):
            return empty_bars(st.series.symbol)
        raise
    st.storage_path = how.path if not st.storage_path else st.storage_path
    st.storage_retries += how.retries
    if how.path == "pgwire":
        st.note(f"read over PGWire: {how.reason}")
    if isinstance(data, pd.DataFrame):
        return with_symbol(data, st.series.symbol)
    return arrow_to_pandas(data, st.series.symbol)


async def read_storage(exporter: BarExporter, st: ReadState, on_breach: object) -> pd.DataFrame:
    """The storage stage: the settled history ``st.hist`` within the storage deadline."""
    check_fetch_budget(st)
    timeout, stage = st.budget.cutoff("storage", time.monotonic())
    deadline = None if timeout is None else time.monotonic() + timeout
    with st.timed("storage"):
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(read_frame, exporter, st, st.hist, deadline), timeout
            )
        except (TimeoutError, StorageSaturated) as e:
            saturated = isinstance(e, StorageSaturated) or st.storage_retries > 0
            why = f": storage was saturated ({e})" if saturated else ""
            if callable(on_breach):
                on_breach(stage, st)
            raise SeamlessSLAExceeded(
                stage, f"reading {st.series} from QuestDB passed the {stage} deadline{why}"
            ) from None
