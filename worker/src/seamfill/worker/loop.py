"""The worker's main loop: acquire leases, backfill each chunk, complete or fail it, drain on stop.

Each lease runs as its own task through the shared backfill step (fetch → validate → write →
wait visible). The heartbeat task (:mod:`seamfill.worker.heartbeat`) extends the leases and
cancels a chunk's task when the coordinator says stop or the lease is lost. A chunk is completed
with its fencing token only after its rows are visible; a stale token is the coordinator's to
refuse, and then nothing is reported covered.

Stopping (SIGTERM, or the coordinator asks the worker to drain): no new Acquire; chunks that
have written nothing yet are released at once so another worker takes them now rather than after
the TTL; chunks already writing get ``grace_seconds`` to finish, then are released too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from seamfill.core import tracing
from seamfill.core.errors import (
    CoordinatorUnavailable,
    FailedPrecondition,
    NotFound,
    SeamfillError,
)
from seamfill.core.logs import log_event
from seamfill.core.types import Lease
from seamfill.sdk.backfill.chunk import ChunkProgress, run_chunk
from seamfill.sdk.backfill.faults import STORAGE, Fault, classify, fail_reason, upstream
from seamfill.sdk.backfill.fetchers import Fetcher, source_name
from seamfill.sdk.backfill.sink import QuestDBSink
from seamfill.worker import metrics
from seamfill.worker.aio import Backoff, first
from seamfill.worker.breakers import Breakers
from seamfill.worker.config import WorkerConfig
from seamfill.worker.heartbeat import heartbeat_loop
from seamfill.worker.leases import Directive, LeaseService
from seamfill.worker.plugins import Fetchers

__all__ = ["Held", "Worker"]

log = logging.getLogger("seamfill.worker")
# Chunks waiting for visibility, per concurrency slot, on top of the chunks being written.
VERIFYING_PER_SLOT = 8
_tracer = tracing.tracer("seamfill.worker")


@dataclass
class Held:
    """A lease this worker holds and the task working on it."""

    lease: Lease
    deadline_us: int
    progress: ChunkProgress = field(default_factory=ChunkProgress)
    task: asyncio.Task[None] | None = None
    stop: Directive | None = None
    """Why the task was cancelled: a heartbeat directive, or None for shutdown."""
    stop_reason: str = ""
    written: bool = False
    """Rows committed; only the wait for visibility is left (the chunk takes no slot)."""
    started: float = field(default_factory=time.perf_counter)


class Worker:
    """One worker process's loop; ``await run()`` until :meth:`stop` (or a drain request)."""

    def __init__(
        self,
        config: WorkerConfig,
        leases: LeaseService,
        sink: QuestDBSink,
        *,
        fetchers: Mapping[str, Callable[..., Fetcher]] | None = None,
    ) -> None:
        """``fetchers`` adds fetcher factories by name, ahead of the installed plugins."""
        self.config = config
        self.leases = leases
        self.sink = sink
        self.held: dict[str, Held] = {}
        self.ttl_ms = 30_000
        self.fetchers = Fetchers(leases, config.worker_id, fetchers, config.reconnect_max_s)
        self.breakers = Breakers(config.worker_id, max_s=config.breaker_max_s)
        self._stopping = asyncio.Event()
        self._slot_freed = asyncio.Event()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """Stop acquiring and drain (safe to call from a signal handler in the loop)."""
        self._stopping.set()

    async def run(self) -> None:
        """Work until stopped, then drain within the grace period."""
        log_event(
            log,
            "seamless.worker.started",
            worker=self.config.worker_id,
            concurrency=self.config.concurrency,
            sources=list(self.config.sources),
        )
        beat = asyncio.create_task(heartbeat_loop(self))
        # Connect to QuestDB while the first Acquire is in flight, not after it.
        warm = asyncio.create_task(self.sink.warm(self.config.concurrency))
        try:
            await self._acquire_loop()
            await self._drain()
        finally:
            for task in (warm, beat):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.fetchers.aclose()
            log_event(log, "seamless.worker.stopped", worker=self.config.worker_id)

    # -- acquiring -------------------------------------------------------------------------

    async def _acquire_loop(self) -> None:
        backoff = Backoff(0.1, self.config.reconnect_max_s)
        while not self.stopping:
            self._slot_freed.clear()
            free = self._free_slots()
            if free <= 0:
                await first(self._slot_freed.wait(), self._stopping.wait())
                continue
            gate = self.breakers.gate(
                self.config.sources,
                free,
                (h.lease.dataset.source for h in self.held.values()),
                time.monotonic(),
            )
            if gate.limit <= 0:  # a dependency is away: take no work that needs it
                await first(
                    asyncio.sleep(gate.wait_s), self._slot_freed.wait(), self._stopping.wait()
                )
                continue
            call = asyncio.create_task(
                self.leases.acquire(
                    self.config.worker_id,
                    gate.sources or self.config.sources,
                    gate.limit,
                    self.config.acquire_wait_ms,
                )
            )
            await first(call, self._stopping.wait())
            if not call.done():
                call.cancel()
                with contextlib.suppress(asyncio.CancelledError, SeamfillError):
                    await call
                break
            try:
                result = call.result()
            except Exception as e:  # the coordinator away, or an answer we cannot read
                log_event(
                    log,
                    "seamless.coordinator.unavailable",
                    logging.WARNING,
                    worker=self.config.worker_id,
                    error=f"{type(e).__name__}: {e}",
                )
                await first(asyncio.sleep(backoff.next()), self._stopping.wait())
                continue
            backoff.reset()
            if result.ttl_ms > 0:
                self.ttl_ms = result.ttl_ms
            for lease in result.leases:
                self._start(lease)
            if result.drain:
                log_event(
                    log,
                    "seamless.worker.stopped",
                    worker=self.config.worker_id,
                    reason="the coordinator asked this worker to drain",
                )
                self.stop()

    def _free_slots(self) -> int:
        """Leases to ask for: ``concurrency`` chunks may be fetching or writing; chunks that
        only wait for QuestDB to show their rows hold no memory and take no slot, up to
        ``VERIFYING_PER_SLOT`` times as many (so a stalled QuestDB cannot pile up leases)."""
        busy = sum(1 for h in self.held.values() if not h.written)
        limit = self.config.concurrency * (1 + VERIFYING_PER_SLOT)
        return min(self.config.concurrency - busy, limit - len(self.held))

    def _written(self, held: Held) -> None:
        held.written = True
        self._slot_freed.set()

    def _start(self, lease: Lease) -> None:
        held = Held(lease, lease.deadline_us)
        self.held[lease.lease_id] = held
        held.task = asyncio.create_task(self._work(held), name=f"chunk {lease.lease_id}")
        metrics.LEASES_HELD.set(len(self.held))
        log_event(
            log,
            "seamless.lease.granted",
            logging.DEBUG,  # the attempt line that follows says the same and more
            lease=lease.lease_id,
            token=lease.token,
            worker=self.config.worker_id,
            series=str(lease.chunk.series),
        )

    # -- one chunk -------------------------------------------------------------------------

    async def _work(self, held: Held) -> None:
        lease = held.lease
        chunk = lease.chunk
        log_event(
            log,
            "seamless.backfill.attempt",
            lease=lease.lease_id,
            token=lease.token,
            worker=self.config.worker_id,
            series=str(chunk.series),
            start_us=chunk.range.start_us,
            end_us=chunk.range.end_us,
            attempt=chunk.attempts + 1,
            job=list(chunk.job_ids),
        )
        try:
            await self._attempt(held)
        except asyncio.CancelledError:
            await self._stopped(held)
        except Exception as e:  # a bug of ours must not kill the worker: report and go on
            log_event(
                log,
                "seamless.backfill.failed",
                logging.ERROR,
                lease=lease.lease_id,
                worker=self.config.worker_id,
                reason=f"{type(e).__name__}: {e}",
            )
        finally:
            self.held.pop(lease.lease_id, None)
            metrics.LEASES_HELD.set(len(self.held))
            self._slot_freed.set()

    async def _attempt(self, held: Held) -> None:
        lease = held.lease
        ds, chunk = lease.dataset, lease.chunk
        try:
            with tracing.span(
                _tracer,
                "seamfill.worker.chunk",
                traceparent=lease.traceparent,
                attributes={"seamfill.dataset": ds.name, "seamfill.lease": lease.lease_id},
            ):
                rows = await run_chunk(
                    self.fetchers.get(ds),
                    self.sink,
                    chunk.series,
                    chunk.range,
                    ds,
                    progress=held.progress,
                    fingerprint=True,
                    on_written=lambda: self._written(held),
                )
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._observe(held)
            await self._failed(held, e)
            return
        self._observe(held)
        self.breakers.success(upstream(ds.source))
        if rows:
            self.breakers.success(STORAGE)
        await self._complete(held, rows)

    async def _failed(self, held: Held, error: BaseException) -> None:
        """Whose fault: the environment's pauses the dependency and gives the chunk back with
        no attempt spent; the chunk's own is reported with Fail."""
        fault = classify(error)
        source = upstream(held.lease.dataset.source)
        if fault is not Fault.UPSTREAM and held.progress.stage != "fetching":
            self.breakers.success(source)
        if not fault.environment:
            await self._fail(held, error, fault)
            return
        text = f"{type(error).__name__}: {getattr(error, 'message', None) or error}"
        dependency = STORAGE if fault is Fault.STORAGE else source
        self.breakers.failure(dependency, time.monotonic(), text)
        await self._defer(held, dependency, text)

    def _observe(self, held: Held) -> None:
        ds, p = held.lease.dataset, held.progress
        metrics.FETCH_SECONDS.labels(source_name(ds.source)).observe(p.fetch_s)
        if p.rows:
            metrics.WRITE_SECONDS.labels(ds.name).observe(p.write_s)
            metrics.VISIBILITY_SECONDS.labels(ds.name).observe(p.visible_s)

    async def _complete(self, held: Held, rows: int) -> None:
        lease = held.lease
        held.progress.stage = "completing"
        try:
            await self._retrying(
                held,
                lambda: self.leases.complete(
                    self.config.worker_id,
                    lease.lease_id,
                    lease.token,
                    rows,
                    held.progress.fingerprint,
                ),
            )
        except (FailedPrecondition, NotFound) as e:
            self._lost(held, e.message)
            return
        except SeamfillError as e:
            # Rows are written and visible but not recorded: the lease expires and the chunk
            # is written again (idempotently) by whoever gets it next.
            log_event(
                log,
                "seamless.backfill.failed",
                logging.ERROR,
                lease=lease.lease_id,
                worker=self.config.worker_id,
                reason=f"Complete failed: {e.message}",
            )
            return
        ds = lease.dataset
        metrics.ROWS_WRITTEN.labels(ds.name, source_name(ds.source)).inc(rows)
        metrics.CHUNKS.labels(ds.name, "completed" if rows else "empty").inc()
        log_event(
            log,
            "seamless.backfill.succeeded",
            lease=lease.lease_id,
            token=lease.token,
            worker=self.config.worker_id,
            series=str(lease.chunk.series),
            rows=rows,
            seconds=round(time.perf_counter() - held.started, 3),
            fetch_s=round(held.progress.fetch_s, 3),
            write_s=round(held.progress.write_s, 3),
            visible_s=round(held.progress.visible_s, 3),
        )

    async def _defer(self, held: Held, dependency: str, reason: str) -> None:
        """Give the chunk back (Release: requeued, no attempt spent) while ``dependency`` is
        away."""
        lease = held.lease
        try:
            await self._retrying(
                held,
                lambda: self.leases.release(self.config.worker_id, lease.lease_id, lease.token),
            )
        except (FailedPrecondition, NotFound) as e:
            self._lost(held, e.message)
            return
        except SeamfillError:
            pass  # the coordinator is away too: the lease runs out, no attempt is spent on it
        metrics.CHUNKS.labels(lease.dataset.name, "deferred").inc()
        log_event(
            log,
            "seamless.backfill.deferred",
            logging.WARNING,
            lease=lease.lease_id,
            token=lease.token,
            worker=self.config.worker_id,
            series=str(lease.chunk.series),
            dependency=dependency,
            reason=reason,
        )

    async def _fail(self, held: Held, error: BaseException, fault: Fault) -> None:
        lease = held.lease
        retryable = fault is Fault.CHUNK
        reason = fail_reason(error, fault)
        metrics.CHUNKS.labels(lease.dataset.name, "failed").inc()
        try:
            result = await self._retrying(
                held,
                lambda: self.leases.fail(
                    self.config.worker_id, lease.lease_id, lease.token, reason, retryable
                ),
            )
        except (FailedPrecondition, NotFound) as e:
            self._lost(held, e.message)
            return
        except SeamfillError as e:
            log_event(
                log,
                "seamless.backfill.failed",
                logging.ERROR,
                lease=lease.lease_id,
                reason=reason,
                retryable=retryable,
                report_error=e.message,
            )
            return
        log_event(
            log,
            "seamless.backfill.failed",
            logging.WARNING,
            lease=lease.lease_id,
            token=lease.token,
            worker=self.config.worker_id,
            series=str(lease.chunk.series),
            reason=reason,
            retryable=retryable,
            attempts=result.attempts,
            dead_lettered=result.dead_lettered,
        )
        if result.dead_lettered:
            log_event(
                log,
                "seamless.deadletter",
                logging.ERROR,
                lease=lease.lease_id,
                series=str(lease.chunk.series),
                reason=reason,
            )

    async def _stopped(self, held: Held) -> None:
        """The chunk's task was cancelled: give the lease back unless it is no longer ours."""
        lease = held.lease
        if held.stop is Directive.LOST:
            self._lost(held, held.stop_reason or "the coordinator reports the lease lost")
            return
        with contextlib.suppress(SeamfillError):
            await self.leases.release(self.config.worker_id, lease.lease_id, lease.token)
        metrics.CHUNKS.labels(lease.dataset.name, "released").inc()
        log_event(
            log,
            "seamless.lease.released",
            lease=lease.lease_id,
            token=lease.token,
            worker=self.config.worker_id,
            stage=held.progress.stage,
            why=held.stop.name.lower() if held.stop else "worker stopping",
            reason=held.stop_reason,
        )

    def _lost(self, held: Held, why: str) -> None:
        metrics.CHUNKS.labels(held.lease.dataset.name, "lost").inc()
        log_event(
            log,
            "seamless.lease.lost",
            logging.WARNING,
            lease=held.lease.lease_id,
            token=held.lease.token,
            worker=self.config.worker_id,
            reason=why,
        )

    async def _retrying(self, held: Held, call: Callable[[], Any]) -> Any:
        """``call()`` again while the coordinator is away and the lease may still be ours."""
        backoff = Backoff(0.05, self.config.reconnect_max_s)
        while True:
            try:
                return await call()
            except CoordinatorUnavailable:
                if time.time() * 1e6 > held.deadline_us:
                    raise
                await asyncio.sleep(backoff.next())

    # -- stopping --------------------------------------------------------------------------

    async def _drain(self) -> None:
        for held in list(self.held.values()):
            if held.progress.stage in ("pending", "fetching") and held.task:
                held.task.cancel()
        tasks = [h.task for h in self.held.values() if h.task]
        if tasks:
            await asyncio.wait(tasks, timeout=self.config.grace_seconds)
        late = [h.task for h in self.held.values() if h.task and not h.task.done()]
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=10)
