"""The state of one read and its last steps (live edge, conformance, fingerprint, metadata).

Kept apart from the provider so each stays small; the provider decides, this records and finishes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from seamfill.core import ranges
from seamfill.core.errors import InvalidArgument, SeamfillError, SeamlessSLAExceeded
from seamfill.core.logs import log_event
from seamfill.core.timeconv import interval_to_us
from seamfill.core.types import Coverage, Dataset, Fingerprint, Series, TimeRange
from seamfill.sdk.metrics import (
    CONFORMANCE_VIOLATIONS,
    COVERAGE_RATIO,
    ROWS_READ,
    SLA_DEADLINE_SECONDS,
)
from seamfill.sdk.quality.fingerprint import fingerprint
from seamfill.sdk.read.coverage import storage_coverage
from seamfill.sdk.read.live import call_fetch, stitch
from seamfill.sdk.read.storage import coerce_bars
from seamfill.sdk.result import SeamlessMeta, SeamlessResult
from seamfill.sdk.settings import SeamlessSettings, Strategy
from seamfill.sdk.sla import Budget

if TYPE_CHECKING:
    from seamfill.sdk.provider import AsyncSeamlessProvider

logger = logging.getLogger("seamfill.sdk.provider")


@dataclass
class ReadState:
    """Everything one read has learnt so far."""

    series: Series
    rng: TimeRange
    settings: SeamlessSettings
    strategy: Strategy
    budget: Budget
    dataset: Dataset = field(default=None)  # type: ignore[assignment]
    want: TimeRange = field(default=None)  # type: ignore[assignment]
    """``rng`` on the bar grid: the bars with ``rng.start <= ts < rng.end``."""
    hist: TimeRange = field(default=None)  # type: ignore[assignment]
    """The settled part of ``want``; the rest is the forming edge."""
    settled_until_us: int = 0
    covered: tuple[TimeRange, ...] = ()
    gaps: tuple[TimeRange, ...] = ()
    job_id: str = ""
    frame: pd.DataFrame | None = None
    source: str = "storage"
    local: bool = False
    degraded: bool = False
    downgraded: bool = False
    reason: str = ""
    live_rows: int = 0
    interval: Any = None
    """The interval the caller gave (``None``: the dataset's own)."""
    timings_ms: dict[str, float] = field(default_factory=dict)
    storage_path: str = ""
    storage_retries: int = 0
    backfill_stage: str = "backfill"
    """The deadline that ends the backfill wait, fixed when the wait starts."""

    @classmethod
    def begin(
        cls, series: Series, rng: TimeRange, settings: SeamlessSettings, strategy: Strategy
    ) -> ReadState:
        return cls(series, rng, settings, strategy, Budget(settings.sla, time.monotonic()))

    def set_dataset(self, dataset: Dataset, settled_until_us: int) -> None:
        step = dataset.interval_us
        start = ranges.align_up(self.rng.start_us, step)
        self.dataset = dataset
        self.want = TimeRange(start, max(start, ranges.align_up(self.rng.end_us, step)))
        edge = min(max(settled_until_us, self.want.start_us), self.want.end_us)
        self.hist = TimeRange(self.want.start_us, edge)
        self.settled_until_us = settled_until_us

    def set_coverage(self, cov: Coverage) -> None:
        self.covered = tuple(ranges.intersect(self.hist, ranges.merge(cov.covered)))
        self.gaps = tuple(ranges.subtract(self.hist, self.covered))

    def refresh_local(self, checked: list[TimeRange]) -> None:
        """Coverage from the rows in ``frame`` plus ``checked`` (chunks this process filled)."""
        frame = self.frame if self.frame is not None else pd.DataFrame({"ts": []})
        cov = storage_coverage(
            frame, self.series, self.hist, self.dataset, checked, self.settled_until_us
        )
        self.set_coverage(cov)

    def coverage_now(self) -> Coverage:
        return Coverage(
            self.series,
            self.hist,
            self.covered,
            self.gaps,
            as_of_us=time.time_ns() // 1_000,
            settled_until_us=self.settled_until_us,
        )

    def downgrade(self, stage: str, reason: str) -> None:
        self.downgraded = True
        if reason not in self.reason:
            self.reason = f"{self.reason}; {reason}" if self.reason else reason
        self.timings_ms.setdefault(f"{stage}_breach", 1.0)

    def note(self, text: str) -> None:
        self.reason = f"{self.reason}; {text}" if self.reason else text

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            spent = time.monotonic() - started
            self.timings_ms[stage] = round(self.timings_ms.get(stage, 0.0) + spent * 1000, 3)
            if stage in ("storage", "backfill", "live"):
                SLA_DEADLINE_SECONDS.labels(stage).observe(spent)


async def read_live(provider: AsyncSeamlessProvider, st: ReadState) -> None:
    """Append the forming edge from the live fetcher, within the live deadline."""
    assert st.frame is not None
    edge = TimeRange(st.hist.end_us, st.want.end_us)
    if edge.empty or provider.live_fetcher is None:
        return
    timeout, stage = st.budget.cutoff("live", time.monotonic())
    with st.timed("live"):
        try:
            raw = await asyncio.wait_for(
                call_fetch(provider.live_fetcher, st.series, edge, st.dataset), timeout
            )
        except TimeoutError:
            if provider._must_raise(st):
                provider._exceeded(stage, st)
                raise SeamlessSLAExceeded(
                    stage, f"the live edge of {st.series} passed the {stage} deadline"
                ) from None
            st.downgrade(stage, f"{stage} deadline passed before the live edge arrived")
            log_event(logger, "seamless.sla.downgrade", stage=stage, dataset=st.series.dataset)
            return
        except Exception as e:  # a live source failing must not lose the history already read
            st.downgrade("live", f"live fetcher failed: {type(e).__name__}: {e}")
            return
    live = coerce_bars(raw, st.series.symbol) if raw is not None and len(raw) else None
    if live is None:
        return
    live_us = live["ts"].astype("int64")
    live = live[(live_us >= edge.start_us) & (live_us < edge.end_us)]
    before = len(st.frame)
    st.frame = stitch(st.frame, live.reset_index(drop=True), edge.start_us)
    st.live_rows = len(st.frame) - before
    if st.live_rows:
        st.source = "storage+live" if st.source == "storage" else st.source


async def finish(provider: AsyncSeamlessProvider, st: ReadState) -> SeamlessResult:
    """Conformance, fingerprint (and its publication), metrics: the result with its metadata."""
    settings = st.settings
    assert st.frame is not None
    complete = not st.gaps and not st.live_rows and not st.degraded
    early = None
    if settings.early_fingerprint and settings.fingerprint:
        early = fingerprint(
            st.frame, st.series, st.want, st.hist.end_us, preview=not complete, early=True
        )
    frame, report = settings.conformance_pipeline.run(st.frame, st.dataset.interval_us)
    for rule, n in report.rollups.items():
        CONFORMANCE_VIOLATIONS.labels(rule).inc(n)
    fp: Fingerprint | None = None
    if settings.fingerprint and (complete or settings.preview_fingerprint):
        fp = early or fingerprint(frame, st.series, st.want, st.hist.end_us, preview=not complete)
    if (
        fp is not None
        and settings.publish_fingerprint
        and not st.local
        and not st.degraded
        and (not fp.preview or settings.preview_fingerprint)
    ):
        await _publish(provider, st, fp)
    now_us = time.time_ns() // 1_000
    data_end = (
        int(frame["ts"].iloc[-1].value // 1_000) + st.dataset.interval_us
        if len(frame)
        else st.hist.start_us
    )
    staleness = 0 if st.live_rows and data_end >= st.want.end_us else max(0, now_us - data_end)
    hist_len = st.hist.duration_us
    ratio = 1.0 if not hist_len else ranges.total(st.covered) / hist_len
    COVERAGE_RATIO.labels(st.series.dataset).set(ratio)
    ROWS_READ.labels(st.series.dataset).inc(len(frame))
    meta = SeamlessMeta(
        series=st.series,
        range=st.want,
        interval_us=st.dataset.interval_us,
        covered=st.covered,
        gaps=st.gaps,
        coverage_ratio=ratio,
        staleness_us=staleness,
        settled_until_us=st.settled_until_us,
        strategy=st.strategy.value,
        source=st.source,
        downgraded=st.downgraded,
        reason=st.reason,
        degraded=st.degraded,
        job_id=st.job_id,
        live_rows=st.live_rows,
        conformance=report,
        fingerprint=fp,
        timings_ms=dict(st.timings_ms),
        storage_path=st.storage_path,
        storage_retries=st.storage_retries,
    )
    return SeamlessResult(frame, meta)


async def _publish(provider: AsyncSeamlessProvider, st: ReadState, fp: Fingerprint) -> None:
    fleet: Any = await provider._fleet_backend()
    timeout = st.budget.remaining("total", time.monotonic())
    try:
        await asyncio.wait_for(fleet.publish(fp), timeout)
    except (SeamfillError, TimeoutError) as e:
        # Audit is best effort: the data is good whether or not the coordinator heard about it.
        st.note(f"fingerprint not published: {type(e).__name__}: {e}")


def resolve_series(node_id: str, settings: SeamlessSettings, known: dict[str, Dataset]) -> Series:
    """The series a ``node_id`` names (see :meth:`AsyncSeamlessProvider.series`)."""
    if not isinstance(node_id, str) or not node_id:
        raise InvalidArgument(
            "node_id must be 'dataset/symbol' or a symbol of the default dataset (settings.dataset)"
        )
    default = settings.dataset or settings.table
    if "/" in node_id:
        head, _, tail = node_id.partition("/")
        if head in {*known, settings.dataset, settings.table} or "." in head or not default:
            return Series(head, tail)
    if not default:
        raise InvalidArgument(
            f"node_id {node_id!r} names no dataset: write it as dataset/symbol or set "
            "settings.dataset"
        )
    return Series(default, node_id)


def local_dataset(
    series: Series, interval: Any, settings: SeamlessSettings, known: dict[str, Dataset]
) -> Dataset:
    """The dataset of ``series`` as settings declare it, for reads without a coordinator."""
    if series.dataset not in (settings.dataset, settings.table) and settings.dataset is not None:
        raise InvalidArgument(
            f"dataset {series.dataset!r} is not configured: without a coordinator only "
            f"{settings.dataset!r} can be read"
        )
    iv = interval_to_us(interval if interval is not None else settings.interval)
    key = f"{series.dataset}@{iv}"
    if key not in known:
        known[key] = Dataset(
            name=series.dataset,
            table=settings.table or series.dataset.replace(".", "_"),
            source="inline",
            interval_us=iv,
            settle_us=settings.settle_ms * 1000,
        )
    return known[key]
