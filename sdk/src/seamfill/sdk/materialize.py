"""Materialize: write a covered, conformed range of one or many series to Parquet with manifests.

For each series the job fills the range's gaps (through the coordinator, or inline with the
provider's fetcher), reads it back pinned to one as-of (so the rows are exactly those ingested by
then, see :mod:`seamfill.sdk.read.asof`), and writes it into an
:class:`~seamfill.sdk.read.artifacts.ArtifactRegistry` with a manifest (series, range, as-of,
fingerprint, conformance report and version, row counts). Each series is written atomically
(manifest last), so an interrupted job is resumed by running it again; a series whose artifact
is already there and intact is skipped without reading storage, so a second run writes nothing.

A read served later from the registry (``SeamlessSettings(artifacts_dir=...)``) has the same
fingerprint as the as-of read of QuestDB it was written from.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seamfill.core import ranges
from seamfill.core.errors import MissingData
from seamfill.core.timeconv import to_range, to_us
from seamfill.core.types import Series, TimeRange
from seamfill.sdk.context import ComputeContext, ExecutionDomain
from seamfill.sdk.provider import AsyncSeamlessProvider
from seamfill.sdk.read.artifacts import Artifact, ArtifactRegistry

__all__ = ["MaterializeReport", "materialize"]


@dataclass(slots=True)
class MaterializeReport:
    """What one run did: artifacts written and those already there."""

    written: list[Artifact] = field(default_factory=list)
    skipped: list[Artifact] = field(default_factory=list)

    @property
    def rows_written(self) -> int:
        return sum(int(a.manifest["rows"]) for a in self.written)

    def to_dict(self) -> dict[str, Any]:
        return {
            "written": [_summary(a) for a in self.written],
            "skipped": [_summary(a) for a in self.skipped],
            "rows_written": self.rows_written,
        }


def _summary(a: Artifact) -> dict[str, Any]:
    fp = a.manifest.get("fingerprint") or {}
    return {
        "series": a.manifest["series"],
        "range": a.manifest["range"],
        "as_of_us": a.as_of_us,
        "rows": a.manifest["rows"],
        "sha256": fp.get("sha256"),
        "path": str(a.path),
    }


def _existing(
    registry: ArtifactRegistry, series: Series, rng: TimeRange, as_of_us: int | None
) -> Artifact | None:
    for art in registry.artifacts(series):
        step = art.interval_us
        start = ranges.align_up(rng.start_us, step)
        want = TimeRange(start, max(start, ranges.align_up(rng.end_us, step)))
        if art.range == want and as_of_us in (None, art.as_of_us) and registry.intact(art):
            return art
    return None


async def materialize(
    provider: AsyncSeamlessProvider,
    node_ids: Sequence[str],
    start: Any,
    end: Any,
    out: str | Path,
    *,
    as_of: Any = None,
    fill: bool = True,
    allow_gaps: bool = False,
    concurrency: int = 1,
    progress: Callable[[str, str], None] | None = None,
) -> MaterializeReport:
    """Materialize ``node_ids`` over ``[start, end)`` into the registry at ``out``.

    ``as_of``: the pin (default: now, once the fills are done). ``fill``: fill gaps first.
    ``allow_gaps``: write a range that still has gaps (listed in the manifest) instead of raising
    :class:`~seamfill.core.errors.MissingData`. ``progress(series, "written"|"skipped")`` is
    called as each series ends. ``concurrency``: series in flight at once (QuestDB caps
    concurrent exports, two by default, so more mostly queues).
    """
    rng = to_range(start, end, unit=provider.settings.time_unit)
    registry = ArtifactRegistry(out)
    pinned = None if as_of is None else to_us(as_of, "as_of", unit=provider.settings.time_unit)
    report = MaterializeReport()
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(node_id: str) -> None:
        series = provider.series(node_id)
        async with gate:
            done = _existing(registry, series, rng, pinned)
            if done is not None:
                report.skipped.append(done)
                if progress is not None:
                    progress(str(series), "skipped")
                return
            art = await _write_one(
                provider, registry, node_id, series, rng, pinned, fill, allow_gaps
            )
            report.written.append(art)
            if progress is not None:
                progress(str(series), "written")

    await asyncio.gather(*(one(n) for n in dict.fromkeys(node_ids)))
    return report


async def _write_one(
    provider: AsyncSeamlessProvider,
    registry: ArtifactRegistry,
    node_id: str,
    series: Series,
    rng: TimeRange,
    pinned: int | None,
    fill: bool,
    allow_gaps: bool,
) -> Artifact:
    if fill:
        await provider.fill_missing(rng.start_us, rng.end_us, node_id=node_id)
    as_of_us = pinned if pinned is not None else time.time_ns() // 1_000
    ctx = ComputeContext("materialize", ExecutionDomain.BACKTEST, as_of_us)
    result = await provider.read(rng.start_us, rng.end_us, node_id=node_id, context=ctx)
    meta = result.meta
    if meta.hold:
        raise MissingData(f"{series} was held, nothing written: {meta.reason}", list(meta.gaps))
    if meta.gaps and not allow_gaps:
        listing = ", ".join(f"[{g.start_us}, {g.end_us})" for g in meta.gaps)
        raise MissingData(
            f"{series} still has {len(meta.gaps)} gap(s) as of {as_of_us}: {listing}; fill "
            "them (a coordinator or a fetcher), or pass allow_gaps to write them listed",
            list(meta.gaps),
        )
    return await asyncio.to_thread(registry.write, series, meta.range, as_of_us, result.frame, meta)
