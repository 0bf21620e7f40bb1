"""SeamlessProvider: read any range of a series as if it had always been stored.

Read path: cache → storage → backfill → live. The coordinator (when configured) says what storage
covers; gaps are handled by the strategy (DESIGN §6); every wait is cut off at its SLA deadline
while it waits; the result carries its metadata (:class:`~seamfill.sdk.result.SeamlessMeta`).
Without a coordinator, the provider's own fetcher fills gaps inline. ``AsyncSeamlessProvider`` is
the asyncio form; ``SeamlessProvider`` runs it on a private event-loop thread for plain code.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pandas as pd

from seamfill.core.errors import (
    CoordinatorUnavailable,
    FetchError,
    InvalidArgument,
    MissingData,
    SeamlessSLAExceeded,
    StorageError,
)
from seamfill.core.logs import log_event
from seamfill.core.timeconv import to_range, to_us, us_to_text
from seamfill.core.tracing import span, tracer
from seamfill.core.types import Coverage, Dataset, Series, TimeRange
from seamfill.sdk.backfill.inline import InlineBackfill
from seamfill.sdk.context import ComputeContext
from seamfill.sdk.metrics import (
    BACKFILL_WAIT_MS,
    READS,
    SLA_DEADLINE_SECONDS,
    SLA_DOWNGRADES,
    SLA_EXCEEDED,
)
from seamfill.sdk.read import holds
from seamfill.sdk.read._context import cache_key, local_cache_hit, serve_artifact, with_context
from seamfill.sdk.read._steps import ReadState, finish, local_dataset, read_live, resolve_series
from seamfill.sdk.read._storage_stage import check_fetch_budget, make_exporter, read_storage
from seamfill.sdk.read.asof import read_as_of
from seamfill.sdk.read.cache import ReadCache
from seamfill.sdk.read.storage import StorageReader
from seamfill.sdk.result import SeamlessResult
from seamfill.sdk.settings import SeamlessSettings, Strategy
from seamfill.sdk.sla import OnBreach

logger = logging.getLogger("seamfill.sdk.provider")
_TRACER = tracer("seamfill.sdk.provider")


class AsyncSeamlessProvider:
    """The asyncio provider. ``settings`` default to :meth:`SeamlessSettings.from_env`.

    ``fetcher``: fills gaps inline when no coordinator is configured; with one, it is used only
    through leases taken like a worker. ``live_fetcher``: answers for the forming edge.
    """

    def __init__(
        self,
        settings: SeamlessSettings | None = None,
        *,
        fetcher: Any = None,
        live_fetcher: Any = None,
    ) -> None:
        self.settings = settings if settings is not None else SeamlessSettings.from_env()
        if fetcher is None and self.settings.fetcher:
            from seamfill.sdk.backfill.fetchers import load_fetcher

            fetcher = load_fetcher(self.settings.fetcher, **self.settings.fetcher_options)
        self.fetcher = fetcher
        self.live_fetcher = live_fetcher
        self.storage = StorageReader.from_url(
            self.settings.storage_url, timeout_s=_seconds(self.settings.sla.storage_deadline_ms)
        )
        self.exporter = make_exporter(self.settings, self.storage)
        ttl = self.settings.cache_ttl_ms
        self.cache = ReadCache(self.settings.cache_bytes, ttl_s=None if ttl is None else ttl / 1000)
        self.inline = InlineBackfill(fetcher, self.settings.storage_url) if fetcher else None
        self._fleet: Any = None
        self._datasets: dict[str, Dataset] = {}

    @classmethod
    def from_preset(
        cls, name: str, *, live_fetcher: Any = None, **overrides: Any
    ) -> AsyncSeamlessProvider:
        """A provider assembled from a named preset; see :meth:`SeamlessSettings.from_preset`."""
        return cls(SeamlessSettings.from_preset(name, **overrides), live_fetcher=live_fetcher)

    # -- the drop-in surface ---------------------------------------------------------------

    async def fetch(
        self,
        start: Any,
        end: Any,
        *,
        node_id: str,
        interval: Any = None,
        output: str = "pandas",
        context: Any = None,
    ) -> Any:
        """Bars of ``node_id`` (``dataset/symbol`` or a symbol of the default dataset) with
        ``start <= ts < end``; metadata in ``frame.attrs["seamless"]``.

        ``output``: ``pandas`` (default), ``arrow`` (a ``pyarrow.Table``, metadata as JSON in its
        schema metadata) or ``polars`` (the ``polars`` extra; metadata via :meth:`read`).
        ``context``: the execution context (see :meth:`read`).
        """
        from seamfill.sdk.formats import check_output

        check_output(output)
        result = await self.read(start, end, node_id=node_id, interval=interval, context=context)
        return result.data(output)

    def iter_batches(
        self,
        start: Any,
        end: Any,
        *,
        node_id: str,
        interval: Any = None,
        batch_rows: int = 100_000,
        output: str = "arrow",
    ) -> Any:
        """The covered bars of a range of any size as an async iterator of bounded pieces.

        See :func:`seamfill.sdk.read.batches.iter_batches`."""
        from seamfill.sdk.read.batches import iter_batches

        return iter_batches(
            self,
            start,
            end,
            node_id=node_id,
            interval=interval,
            batch_rows=batch_rows,
            output=output,
        )

    async def coverage(
        self, start: Any = None, end: Any = None, *, node_id: str, interval: Any = None
    ) -> Coverage:
        """What storage covers of the range (default: the epoch until now)."""
        series = self.series(node_id)
        start_us = to_us(start, "start", unit=self.settings.time_unit) if start is not None else 0
        end_us = (
            to_us(end, "end", unit=self.settings.time_unit)
            if end is not None
            else time.time_ns() // 1_000
        )
        rng = TimeRange(start_us, max(start_us, end_us)).validate()
        st = ReadState.begin(series, rng, self.settings, strategy=Strategy.FAIL_FAST)
        await self._plan(st, interval)
        return st.coverage_now()

    async def ensure_range(
        self, start: Any, end: Any, *, node_id: str, interval: Any = None, wait: bool = False
    ) -> Coverage:
        """Ask for the range to be filled; with ``wait``, wait within the backfill deadline."""
        series = self.series(node_id)
        st = ReadState.begin(
            series,
            to_range(start, end, unit=self.settings.time_unit),
            self.settings,
            self.settings.strategy,
        )
        await self._plan(st, interval)
        if st.gaps and not st.degraded and await self._backfill(st, wait=wait):
            await self._plan(st, interval)
        return st.coverage_now()

    async def fill_missing(
        self, start: Any, end: Any, *, node_id: str, interval: Any = None
    ) -> Coverage:
        """Fill the range's gaps and wait for them (within the backfill deadline)."""
        return await self.ensure_range(start, end, node_id=node_id, interval=interval, wait=True)

    # -- the read ----------------------------------------------------------------------------

    async def read(
        self, start: Any, end: Any, *, node_id: str, interval: Any = None, context: Any = None
    ) -> SeamlessResult:
        """One read with its metadata: the core of :meth:`fetch`.

        ``context`` (a :class:`~seamfill.sdk.context.ComputeContext` or its mapping; default
        ``settings.context``): a backtest never reads the forming edge, and one pinned to an
        ``as_of`` reads the rows ingested by then (:mod:`seamfill.sdk.read.asof`).
        """
        ctx = ComputeContext.from_value(context) if context is not None else self.settings.context
        series = self.series(node_id)
        st = ReadState.begin(
            series,
            to_range(start, end, unit=self.settings.time_unit),
            self.settings,
            self.settings.strategy,
        )
        total = st.budget.remaining("total", time.monotonic())
        deadline = asyncio.timeout(total)
        attributes = {
            "seamfill.series": str(series),
            "seamfill.dataset": series.dataset,
            "seamfill.strategy": st.strategy.value,
        }
        try:
            # The span's context travels with EnsureRange onto the job and its leases, so one
            # trace follows this read to the worker that filled its gap.
            with span(_TRACER, "seamfill.sdk.read", attributes=attributes):
                async with deadline:
                    result = await self._read(st, interval, ctx)
        except TimeoutError:
            if not deadline.expired():
                raise
            self._exceeded("total", st)
            raise SeamlessSLAExceeded(
                "total",
                f"read of {series} passed its total deadline "
                f"({self.settings.sla.total_deadline_ms} ms)",
            ) from None
        except Exception:
            READS.labels(st.strategy.value, "error").inc()
            raise
        finally:
            SLA_DEADLINE_SECONDS.labels("total").observe(time.monotonic() - st.budget.started)
        result = holds.enforce(result, self.settings.sla, time.time_ns() // 1_000)
        READS.labels(st.strategy.value, "partial" if result.meta.partial else "complete").inc()
        return with_context(result, ctx)

    async def _read(
        self, st: ReadState, interval: Any, ctx: ComputeContext | None = None
    ) -> SeamlessResult:
        served = await serve_artifact(self, st, interval, ctx)
        if served is not None:
            return served
        if ctx is not None and ctx.as_of is not None:
            return await read_as_of(self, st, ctx, interval)
        key = cache_key(ctx)
        local = self.settings.coordinator is None
        # Without a coordinator the plan reads storage: look in the cache before it does.
        if local and local_cache_hit(self, st, interval, key):
            return await finish(self, st)
        await self._plan(st, interval)
        check_fetch_budget(st)  # before any backfill: a range too large to fetch is not filled
        looked = local or st.hist != st.want
        cached = None if looked else self.cache.get(st.series, st.want, key)
        if cached is not None and not st.degraded:
            st.frame, st.source, st.storage_path = cached, "cache", "cache"
            return await finish(self, st)
        if st.gaps:
            await self._handle_gaps(st)
        if st.frame is None:
            st.frame = await self._storage(st)
        if ctx is None or ctx.may_read_edge:
            await read_live(self, st)
        result = await finish(self, st)
        if result.meta.complete and not st.degraded and st.source == "storage":
            self.cache.put(
                st.series,
                st.want,
                result.frame,
                complete=True,
                settled_until_us=st.settled_until_us,
                context=key,
            )
        return result

    async def _handle_gaps(self, st: ReadState) -> None:
        if st.strategy is Strategy.FAIL_FAST:
            if st.degraded:
                raise CoordinatorUnavailable(
                    f"coverage of {st.series} cannot be checked: {st.reason}"
                )
            listing = ", ".join(_range_text(g) for g in st.gaps)
            raise MissingData(
                f"{st.series} has {len(st.gaps)} gap(s) in the range: {listing}; "
                "use AUTO_BACKFILL or SEAMLESS to fill them",
                st.gaps,
            )
        if st.degraded and not self._inline_when_away(st):
            return
        if st.strategy is Strategy.PARTIAL_FILL:
            if await self._backfill_or_degrade(st, wait=False) is not None:
                st.note(_partial_note(st))
            return
        # When the total, not the backfill deadline, will end the wait of a read that downgrades,
        # the covered part is read while it waits: at the deadline it is in hand, not still to do.
        prefetch = None
        if not self._must_raise(st) and self._wait_cutoff(st, time.monotonic())[1] == "total":
            prefetch = asyncio.ensure_future(self._storage(st))
        try:
            filled = await self._backfill_or_degrade(st, wait=True)
            if filled is None:
                return
            if not filled:
                await self._after_deadline(st, prefetch)
                prefetch = None
                return
        finally:
            if prefetch is not None:
                prefetch.cancel()
                await asyncio.gather(prefetch, return_exceptions=True)
        st.frame = None  # stale: re-read after the fill
        await self._plan(st, st.interval)

    async def _backfill_or_degrade(self, st: ReadState, *, wait: bool) -> bool | None:
        """:meth:`_backfill`, or ``None`` when the fill could not be done (the read degraded)."""
        try:
            return await self._backfill(st, wait=wait)
        except CoordinatorUnavailable as e:
            # Asked about coverage a moment ago, gone now: serve what storage has, say so.
            st.degraded = True
            st.downgrade("backfill", f"coordinator unavailable while filling gaps: {e}")
            return None
        except (FetchError, StorageError) as e:
            # The fill itself failed (upstream error, dead-lettered chunks, a write that did not
            # become visible): SEAMLESS serves what is there and says why; others raise.
            if st.strategy is not Strategy.SEAMLESS:
                raise
            st.downgrade("backfill", f"backfill failed: {e}")
            st.frame = None
            await self._plan(st, st.interval)
            return None

    async def _after_deadline(self, st: ReadState, prefetch: asyncio.Future[Any] | None) -> None:
        """The gaps were not filled in time: raise, or downgrade to what is covered."""
        stage = st.backfill_stage
        if self._must_raise(st):
            self._exceeded(stage, st)
            raise SeamlessSLAExceeded(
                stage,
                f"gaps of {st.series} were not filled within the "
                f"{stage} deadline; {len(st.gaps)} gap(s) remain",
            )
        st.downgrade(stage, f"{stage} deadline passed with {len(st.gaps)} gap(s) unfilled")
        SLA_DOWNGRADES.labels(stage).inc()
        log_event(
            logger,
            "seamless.sla.downgrade",
            stage=stage,
            dataset=st.series.dataset,
            gaps=len(st.gaps),
            job=st.job_id,
        )
        if prefetch is not None:
            frame = await prefetch
            ts = frame["ts"].astype("int64")
            keep = ts < 0  # all False
            for r in st.covered:
                keep |= (ts >= r.start_us) & (ts < r.end_us)
            st.frame = frame[keep].reset_index(drop=True)
            return
        st.frame = None
        await self._plan(st, st.interval)

    def _inline_when_away(self, st: ReadState) -> bool:
        from seamfill.sdk.backfill._profile import inline_when_away

        return inline_when_away(self.settings, self.inline is not None, st)

    def _wait_cutoff(self, st: ReadState, now: float) -> tuple[float | None, str]:
        # A read that downgrades at the deadline keeps part of the total back for finishing what
        # is covered once the wait ends; one that raises may wait until the total's end.
        reserve = 0.0 if self._must_raise(st) else max(0.1, 3 * (now - st.budget.started))
        return st.budget.cutoff("backfill", now, reserve)

    def _must_raise(self, st: ReadState) -> bool:
        on = self.settings.sla.on_breach
        return on is OnBreach.RAISE or (
            on is OnBreach.STRATEGY and st.strategy is Strategy.AUTO_BACKFILL
        )

    def _exceeded(self, stage: str, st: ReadState) -> None:
        SLA_EXCEEDED.labels(stage).inc()
        log_event(
            logger, "seamless.sla.exceeded", logging.WARNING, stage=stage, dataset=st.series.dataset
        )

    # -- stages ------------------------------------------------------------------------------

    async def _plan(self, st: ReadState, interval: Any) -> None:
        """Dataset, settled edge and coverage of the read (from the coordinator, or storage)."""
        st.interval = interval
        with st.timed("coverage"):
            if self.settings.coordinator is None:
                dataset = self._local_dataset(st.series, interval)
                st.set_dataset(dataset, dataset.settled_until(time.time_ns() // 1_000))
                # Taken before the read: a chunk finishing during it must not be claimed as
                # covered by a frame that was read without its rows.
                checked = self.inline.checked(st.series) if self.inline is not None else []
                st.frame = await self._storage(st)
                st.local = True
                st.refresh_local(checked)
                return
            try:
                fleet = await self._fleet_backend()
                timeout = st.budget.remaining("storage", time.monotonic())
                cov, dataset = await fleet.coverage(st.series, st.rng, interval, timeout)
            except (CoordinatorUnavailable, TimeoutError) as e:
                await self._degrade(st, interval, e)
                return
            self._datasets[dataset.name] = dataset
            st.set_dataset(dataset, cov.settled_until_us)
            st.set_coverage(cov)

    async def _degrade(self, st: ReadState, interval: Any, error: BaseException) -> None:
        reason = f"coordinator unavailable ({type(error).__name__}: {error})"
        log_event(
            logger,
            "seamless.coordinator.unavailable",
            logging.WARNING,
            dataset=st.series.dataset,
            error=str(error),
        )
        dataset = self._datasets.get(st.series.dataset)
        if dataset is None:
            try:
                dataset = self._local_dataset(st.series, interval)
            except InvalidArgument:
                raise CoordinatorUnavailable(
                    f"{reason}; dataset {st.series.dataset!r} is not "
                    "known locally: set table and interval"
                ) from error
        st.degraded = True
        if reason not in st.reason:  # keep what earlier steps of this read noted
            st.reason = f"{reason}; {st.reason}" if st.reason else reason
        st.set_dataset(dataset, dataset.settled_until(time.time_ns() // 1_000))
        if st.strategy is Strategy.FAIL_FAST:
            raise CoordinatorUnavailable(reason) from error
        st.frame = await self._storage(st)
        st.local = True
        st.refresh_local([])
        st.downgrade("coverage", reason)

    async def _storage(self, st: ReadState) -> pd.DataFrame:
        return await read_storage(self.exporter, st, self._exceeded)

    async def _backfill(self, st: ReadState, *, wait: bool) -> bool:
        """Ask for the gaps to be filled; with ``wait``, whether they were within the deadline."""
        started = time.monotonic()
        cutoff, st.backfill_stage = self._wait_cutoff(st, started)
        until = None if cutoff is None else started + cutoff
        with st.timed("backfill"):
            if st.local:
                if self.inline is None:
                    st.note(f"no coordinator and no fetcher: {len(st.gaps)} gap(s) stay unfilled")
                    return False
                tasks = self.inline.start(st.series, list(st.gaps), st.dataset)
                if not wait:
                    return False
                return await self.inline.wait(tasks, _left(until), st.dataset)
            fleet = await self._fleet_backend()
            rpc_timeout = st.budget.remaining("storage", time.monotonic())
            try:
                st.job_id = await fleet.ensure(st.series, st.hist, rpc_timeout)
            except TimeoutError:
                raise CoordinatorUnavailable(
                    "EnsureRange got no answer within the storage deadline"
                ) from None
            if not wait or not st.job_id:
                return not st.job_id
            try:
                return bool(await fleet.wait(st.job_id, st, _left(until), self.fetcher))
            finally:
                BACKFILL_WAIT_MS.labels(st.dataset.name).observe(
                    (time.monotonic() - started) * 1000
                )

    # -- helpers -----------------------------------------------------------------------------

    def series(self, node_id: str) -> Series:
        """``dataset/symbol``, or a bare symbol of the settings' dataset (or table).

        With a default dataset configured, ``BTC/USDT`` is a symbol of it unless ``BTC`` is a
        dataset this provider knows (or a dotted name like ``binance.ohlcv_1m``).
        """
        return resolve_series(node_id, self.settings, self._datasets)

    def _local_dataset(self, series: Series, interval: Any) -> Dataset:
        return local_dataset(series, interval, self.settings, self._datasets)

    async def _fleet_backend(self) -> Any:
        if self._fleet is None:
            from seamfill.sdk.backfill._fleet import FleetBackend

            self._fleet = FleetBackend(self.settings)
        return self._fleet

    async def aclose(self) -> None:
        """Stop background work and close connections."""
        if self.inline is not None:
            await self.inline.aclose()
        if self._fleet is not None:
            await self._fleet.aclose()
            self._fleet = None
        self.exporter.close()

    async def check_profile(self) -> None:
        """With ``profile: prod``, raise :class:`CoordinatorUnavailable` unless the coordinator
        answers SERVING (called on ``async with`` and by the plain provider's constructor)."""
        if self.settings.profile == "prod":
            from seamfill.sdk.backfill._profile import require_coordinator

            fleet = await self._fleet_backend()
            timeout = _seconds(self.settings.sla.storage_deadline_ms)
            await require_coordinator(fleet.client, fleet.client.address, timeout)

    async def __aenter__(self) -> AsyncSeamlessProvider:
        await self.check_profile()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _left(until: float | None) -> float | None:
    return None if until is None else max(0.0, until - time.monotonic())


def _seconds(ms: int | None) -> float:
    return 30.0 if ms is None else max(1.0, ms / 1000.0)


__all__ = ["AsyncSeamlessProvider"]


def _range_text(r: TimeRange) -> str:
    return f"[{us_to_text(r.start_us)}, {us_to_text(r.end_us)})"


def _partial_note(st: ReadState) -> str:
    """Why a PARTIAL_FILL read lacks rows: what is missing and what was done about it."""
    head = (
        "nothing of the range is stored yet"
        if not st.covered
        else f"{len(st.gaps)} gap(s) not stored yet"
    )
    shown = ", ".join(_range_text(g) for g in st.gaps[:3]) + (" …" if len(st.gaps) > 3 else "")
    job = f"backfill job {st.job_id} queued" if st.job_id else "no backfill job could be queued"
    return f"partial fill: {head} ({shown}); {job}, not waited for (PARTIAL_FILL)"
