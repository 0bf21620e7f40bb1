"""The read path's use of the execution context: cache keys, the context in the metadata, and
reads served from a materialized artifact (``settings.artifacts_dir``)."""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from seamfill.core import ranges
from seamfill.core.types import Dataset, TimeRange
from seamfill.sdk.context import ComputeContext, ExecutionDomain
from seamfill.sdk.quality.fingerprint import fingerprint
from seamfill.sdk.read._steps import ReadState, finish
from seamfill.sdk.read.artifacts import ArtifactRegistry
from seamfill.sdk.result import SeamlessResult

if TYPE_CHECKING:
    from seamfill.sdk.provider import AsyncSeamlessProvider


def cache_key(ctx: ComputeContext | None) -> Hashable:
    """What the cache keys on besides series and range."""
    return None if ctx is None else ctx.key


def local_cache_hit(
    provider: AsyncSeamlessProvider, st: ReadState, interval: Any, key: Hashable
) -> bool:
    """Without a coordinator: whether the cache holds the read (``st`` then holds its rows), so
    storage is not read at all."""
    dataset = provider._local_dataset(st.series, interval)
    st.set_dataset(dataset, dataset.settled_until(time.time_ns() // 1_000))
    cached = provider.cache.get(st.series, st.want, key) if st.hist == st.want else None
    if cached is None:
        return False
    st.frame, st.source, st.local, st.interval = cached, "cache", True, interval
    st.storage_path = "cache"
    st.refresh_local([])
    return True


def with_context(result: SeamlessResult, ctx: ComputeContext | None) -> SeamlessResult:
    """``result`` with the context recorded in its metadata."""
    if ctx is None:
        return result
    return SeamlessResult(result.frame, replace(result.meta, context=ctx.to_dict()))


async def serve_artifact(
    provider: AsyncSeamlessProvider, st: ReadState, interval: Any, ctx: ComputeContext | None
) -> SeamlessResult | None:
    """The read answered from a materialized artifact, if the settings name a registry and one
    holds the range (of the context's as-of, when pinned). Live and dryrun reads never are."""
    root = provider.settings.artifacts_dir
    if root is None or (ctx is not None and ctx.execution_domain is not ExecutionDomain.BACKTEST):
        return None
    registry = ArtifactRegistry(root)
    as_of = ctx.as_of if ctx is not None else None
    probe = registry.artifacts(st.series)
    first = next(probe, None)
    if first is None:
        return None
    step = first.interval_us
    start = ranges.align_up(st.rng.start_us, step)
    want = TimeRange(start, max(start, ranges.align_up(st.rng.end_us, step)))
    art = registry.find(st.series, want, as_of)
    if art is None:
        return None
    frame = art.read()
    ts = np.asarray(frame["ts"].astype("int64"))
    lo, hi = np.searchsorted(ts, [want.start_us, want.end_us], side="left")
    st.frame = frame.iloc[int(lo) : int(hi)].reset_index(drop=True)
    dataset = provider._datasets.get(st.series.dataset) or Dataset(
        name=st.series.dataset, table="", source="artifact", interval_us=step
    )
    st.set_dataset(dataset, want.end_us)
    st.interval, st.source, st.local = interval, "artifact", True
    st.gaps = tuple(
        ranges.intersect(want, [TimeRange(int(a), int(b)) for a, b in art.manifest["gaps"]])
    )
    st.covered = tuple(ranges.subtract(want, st.gaps))
    result = await finish(provider, st)
    fp = fingerprint(result.frame, st.series, want, art.as_of_us)
    meta = replace(result.meta, fingerprint=fp, artifact=str(art.path))
    return SeamlessResult(result.frame, meta)
