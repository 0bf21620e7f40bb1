"""One chunk of backfill: fetch → validate → write → wait until visible.

Shared by the worker fleet and the SDK's inline backfill, so both write exactly the same rows the
same way. Errors come out classified (:func:`~seamfill.sdk.backfill.faults.classify` says whose
fault it is):
:class:`UpstreamUnavailable` and :class:`StorageUnavailable` are the environment's,
:class:`FetchError` with ``retryable=False`` and :class:`SchemaMismatch` are the chunk's and
terminal, other :class:`StorageError` (rows not visible in time) is the chunk's and retryable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from seamfill.core import tracing
from seamfill.core.errors import FetchError, SeamfillError, UpstreamUnavailable
from seamfill.core.types import Dataset, Series, TimeRange
from seamfill.sdk.backfill.faults import Fault, classify
from seamfill.sdk.backfill.fetchers import COLUMNS, Fetcher
from seamfill.sdk.backfill.sink import SCHEMAS, QuestDBSink

__all__ = ["ChunkProgress", "is_retryable", "run_chunk", "validate_frame"]

# Errors a fetcher plugin may let escape that mean "the network hiccuped", not "the code is
# wrong": those are worth another attempt, anything else is reported as terminal.
_TRANSIENT = (OSError, TimeoutError)


@dataclass
class ChunkProgress:
    """What a chunk has done so far; heartbeats report it to the coordinator."""

    stage: str = "pending"
    """pending, fetching, writing, verifying or done."""
    rows: int = 0
    """Rows written so far."""
    until_us: int = 0
    """End of the last bar written (0 before the first write)."""
    fetch_s: float = 0.0
    """Seconds spent fetching."""
    write_s: float = 0.0
    """Seconds spent writing (the ILP transaction)."""
    visible_s: float = 0.0
    """Seconds from the commit until the rows were visible."""
    fingerprint: str = ""
    """sha256 of the rows written (:func:`seamfill.sdk.quality.fingerprint.digest`, as-of 0), when
    asked for: a later read of the chunk's range gives the same digest."""


def is_retryable(error: BaseException) -> bool:
    """Whether a failed chunk is worth another attempt (see
    :func:`~seamfill.sdk.backfill.faults.classify` for whose fault it is, which decides whether
    the attempt is spent)."""
    return classify(error) is not Fault.CHUNK_TERMINAL


def _bad(series: Series, range: TimeRange, problem: str) -> FetchError:
    return FetchError(
        f"fetcher returned bad rows for {series} in [{range.start_us}, "
        f"{range.end_us}): {problem}; fix the fetcher or its source",
        retryable=False,
    )


def _ts_us(frame: pd.DataFrame, series: Series, range: TimeRange) -> NDArray[np.int64]:
    ts = frame["ts"]
    if pd.api.types.is_datetime64_any_dtype(ts.dtype):
        if getattr(ts.dt, "tz", None) is not None:
            ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
        out: NDArray[np.int64] = ts.to_numpy(dtype="datetime64[us]").astype(np.int64)
        return out
    if pd.api.types.is_integer_dtype(ts.dtype):
        ints: NDArray[np.int64] = ts.to_numpy(dtype=np.int64)
        return ints
    raise _bad(
        series,
        range,
        f"column 'ts' has dtype {ts.dtype}; give datetime64 (UTC) or int64 microseconds",
    )


def _check_times(ts: NDArray[np.int64], series: Series, range: TimeRange, dataset: Dataset) -> None:
    """``ts`` (sorted) lies in ``range``; bars sit on the grid, once each."""
    outside = (ts < range.start_us) | (ts >= range.end_us)
    if outside.any():
        first = int(ts[outside][0])
        raise _bad(series, range, f"{int(outside.sum())} row(s) outside the range, e.g. ts={first}")
    if dataset.kind != "bars":
        return
    off = ts % dataset.interval_us != 0
    if off.any():
        raise _bad(
            series,
            range,
            f"{int(off.sum())} bar(s) off the {dataset.interval_us}us grid, "
            f"e.g. ts={int(ts[off][0])}",
        )
    if (np.diff(ts) == 0).any():
        raise _bad(series, range, "duplicate bar timestamps")


def validate_frame(
    frame: object, series: Series, range: TimeRange, dataset: Dataset
) -> pd.DataFrame:
    """Check a fetcher's frame against the contract; the frame the sink writes.

    Every row must lie in ``range``; bars must sit on the dataset's grid, once each; other kinds
    keep one row per dedup key (e.g. trades: ``ts`` + ``trade_id``; an upstream page that repeats
    a row is not an error, the table would keep one anyway). Numbers
    become float64, ``ts`` becomes ``datetime64[us]``. Violations are terminal
    :class:`FetchError` naming the problem.
    """
    if not isinstance(frame, pd.DataFrame):
        raise _bad(series, range, f"got {type(frame).__name__}, expected a pandas DataFrame")
    columns = COLUMNS.get(dataset.kind)
    if columns is None:
        raise _bad(series, range, f"dataset kind {dataset.kind!r} is not one of {sorted(COLUMNS)}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise _bad(series, range, f"missing column(s) {missing}; expected {list(columns)}")
    if frame.empty:
        return frame.loc[:, list(columns)]
    ts = _ts_us(frame, series, range)
    rows: pd.DataFrame = frame
    if not bool((np.diff(ts) >= 0).all()):  # rows in time order, as readers see them
        order = np.argsort(ts, kind="stable")
        rows, ts = frame.iloc[order], ts[order]
    _check_times(ts, series, range, dataset)
    if dataset.kind != "bars":  # bars were checked once per time above; others by their keys
        keys = [k for k in SCHEMAS[dataset.kind][1] if k not in ("ts", "symbol")]
        repeated = pd.DataFrame({"ts": ts, **{k: rows[k].to_numpy() for k in keys}}).duplicated(
            keep="last"
        )
        if repeated.any():
            kept = ~repeated.to_numpy()
            rows, ts = rows.iloc[kept], ts[kept]
    out = {"ts": ts.astype("datetime64[us]")}
    for name in columns[1:]:
        col = rows[name]
        if name in ("trade_id", "side"):
            text = col if isinstance(col.dtype, pd.CategoricalDtype) else col.astype("string")
            out[name] = text.array
            continue
        if col.dtype == np.float64:  # the common case: no conversion, no copy
            out[name] = col.to_numpy()
            continue
        try:
            out[name] = pd.to_numeric(col, errors="raise").to_numpy(dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise _bad(series, range, f"column {name!r} is not numeric ({e})") from e
    return pd.DataFrame(out)


_tracer = tracing.tracer("seamfill.backfill")


def _attrs(series: Series, dataset: Dataset) -> dict[str, str]:
    return {"seamfill.series": str(series), "seamfill.source": dataset.source}


async def run_chunk(
    fetcher: Fetcher,
    sink: QuestDBSink,
    series: Series,
    range: TimeRange,
    dataset: Dataset,
    *,
    progress: ChunkProgress | None = None,
    fingerprint: bool = False,
    on_written: Callable[[], None] | None = None,
) -> int:
    """Backfill one chunk; the rows written and visible (0 = the source has none: covered-empty).

    Raises :class:`FetchError` (see ``retryable``), :class:`SchemaMismatch` (terminal) or
    :class:`StorageError` (retryable, e.g. rows not visible within the sink's bounded wait).
    Safe to repeat: tables deduplicate, so a retry or a zombie writes no duplicate.

    ``on_written`` is called once the rows are committed, before the wait for visibility: the
    chunk holds no rows in memory from then on, so a caller may start another one meanwhile.
    """
    state = progress if progress is not None else ChunkProgress()
    state.stage = "fetching"
    t0 = time.perf_counter()
    try:
        with tracing.span(_tracer, "seamfill.backfill.fetch", attributes=_attrs(series, dataset)):
            raw = await fetcher.fetch(series, range, dataset)
    except SeamfillError:
        raise
    except _TRANSIENT as e:
        raise UpstreamUnavailable(
            f"fetching {series} failed ({type(e).__name__}: {e}); will retry"
        ) from e
    except Exception as e:
        raise FetchError(
            f"fetcher {type(fetcher).__name__} raised {type(e).__name__}: {e}; "
            "fix the fetcher or its options",
            retryable=False,
        ) from e
    state.fetch_s = time.perf_counter() - t0
    frame = validate_frame(raw, series, range, dataset)
    del raw  # keep one copy of the chunk in memory, not two
    if frame.empty:
        state.stage = "done"
        return 0
    state.stage = "writing"
    t0 = time.perf_counter()
    with tracing.span(_tracer, "seamfill.backfill.write", attributes=_attrs(series, dataset)):
        rows = await sink.write(dataset, series.symbol, frame)
    state.write_s = time.perf_counter() - t0
    last = int(frame["ts"].to_numpy(dtype=np.int64).max())
    state.rows, state.until_us = rows, min(last + dataset.interval_us, range.end_us)
    if fingerprint:
        from seamfill.sdk.quality.fingerprint import digest

        state.fingerprint = digest(frame, series, range, 0)
    del frame
    state.stage = "verifying"
    if on_written is not None:
        on_written()
    t0 = time.perf_counter()
    await sink.wait_visible(dataset, series.symbol, range, rows)
    state.visible_s = time.perf_counter() - t0
    state.stage = "done"
    return rows
