"""The provider's own lease work while it waits for a job: it takes chunks of the dataset's source
like any worker (acquire → fetch → write → visible → complete) and stops like one.

Heartbeats extend the lease at a third of the TTL and carry progress. Their answer may tell the
lease to stop (every job waiting on the chunk was cancelled or paused) or say it is lost (stale
token, expired): the chunk's task is cancelled at once, so nothing more is fetched or written. A
stopped lease is released (the chunk goes back to the queue, or is dropped when no job wants it);
a lost one is no longer ours, so it is neither released nor completed. While the coordinator
cannot be reached the chunk goes on, but once the lease's last known deadline has passed it is
treated as lost: another worker may hold it by now.

Failures are classified as the fleet's are (:mod:`seamfill.sdk.backfill.faults`): the chunk's
own fault is reported with Fail; an outage of QuestDB or the upstream gives the chunk back with
Release (no attempt spent) and opens a breaker that pauses acquiring until it half-opens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from seamfill.core.errors import FailedPrecondition, NotFound, SeamfillError
from seamfill.core.logs import log_event
from seamfill.core.types import Dataset, Directive, Lease
from seamfill.sdk.backfill.chunk import ChunkProgress, run_chunk
from seamfill.sdk.backfill.faults import Breaker, BreakerState, Fault, classify, fail_reason
from seamfill.sdk.client._coordinator import CoordinatorClient, Progress

__all__ = ["LeaseHelper"]

logger = logging.getLogger("seamfill.sdk.provider")
# Acquire long-polls; this bounds one poll so a finished wait is noticed promptly.
_ACQUIRE_WAIT_MS = 200


@dataclass
class _Held:
    """The lease being worked on, and why its chunk was stopped (None: it was not)."""

    lease: Lease
    deadline_us: int
    progress: ChunkProgress = field(default_factory=ChunkProgress)
    task: asyncio.Future[int] | None = None
    stop: Directive | None = None
    stop_reason: str = ""


class LeaseHelper:
    """Works one chunk at a time of one source for ``worker_id`` until told to stop."""

    def __init__(self, client: CoordinatorClient, sink: Any, worker_id: str) -> None:
        self.client = client
        self.sink = sink
        self.worker_id = worker_id
        self.ttl_ms = 30_000
        self.breaker = Breaker()
        """Open while QuestDB or the upstream is away (one chunk at a time: one breaker)."""

    async def run(self, dataset: Dataset, fetch: Any, stop: asyncio.Event) -> None:
        """Acquire and work chunks of ``dataset``'s source until ``stop`` is set, or until an
        operator drains this worker id (then the fleet's workers do the rest)."""
        while not stop.is_set():
            now = time.monotonic()
            if self.breaker.state(now) is BreakerState.OPEN:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.breaker.until - now)
                continue
            got = await self.client.acquire(
                self.worker_id, [dataset.source], max=1, wait_ms=_ACQUIRE_WAIT_MS
            )
            if got.drain:
                log_event(logger, "seamless.provider.drained", worker=self.worker_id)
                return
            if got.ttl_ms > 0:
                self.ttl_ms = got.ttl_ms
            for lease in got.leases:
                await self.work(lease, fetch)

    async def work(self, lease: Lease, fetch: Any) -> None:
        """One chunk: heartbeats while it runs, then complete, fail (classified) or hand back.

        Cancelling this coroutine (the provider's wait is over) releases the lease at once
        rather than letting it run out.
        """
        held = _Held(lease, lease.deadline_us)
        chunk = lease.chunk
        task = asyncio.ensure_future(
            run_chunk(
                fetch, self.sink, chunk.series, chunk.range, lease.dataset, progress=held.progress
            )
        )
        held.task = task
        beat = asyncio.ensure_future(self._heartbeat(held))
        try:
            # wait(), not await: cancelling this coroutine must not look like a stop directive.
            await asyncio.wait([task])
        except asyncio.CancelledError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await asyncio.shield(self._stopped(held))
            raise
        finally:
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)
        if task.cancelled():
            await self._stopped(held)
            return
        error = task.exception()
        if error is not None:
            await self._fail(held, error)
            return
        await self._complete(held, task.result())

    # -- heartbeats --------------------------------------------------------------------------

    async def _heartbeat(self, held: _Held) -> None:
        while True:
            await asyncio.sleep(max(self.ttl_ms, 300) / 3000)
            await self.beat(held)

    async def beat(self, held: _Held) -> None:
        """One heartbeat for ``held``, and act on the answer."""
        lease, p = held.lease, held.progress
        try:
            answer = await self.client.heartbeat(
                self.worker_id, [Progress(lease.lease_id, lease.token, p.until_us, p.rows)]
            )
        except SeamfillError as e:
            log_event(
                logger,
                "seamless.coordinator.unavailable",
                logging.WARNING,
                worker=self.worker_id,
                error=f"{type(e).__name__}: {e.message}",
            )
            if time.time() * 1e6 > held.deadline_us:
                _stop(held, Directive.LOST, "lease expired while the coordinator was away")
            return
        if answer.ttl_ms > 0:
            self.ttl_ms = answer.ttl_ms
        for status in answer.statuses:
            if status.lease_id != held.lease.lease_id:
                continue
            if status.directive is Directive.CONTINUE:
                held.deadline_us = status.deadline_us or held.deadline_us
            else:
                _stop(held, status.directive, status.reason)

    # -- endings -----------------------------------------------------------------------------

    async def _complete(self, held: _Held, rows: int) -> None:
        lease = held.lease
        self._resumed()
        try:
            await self.client.complete(self.worker_id, lease.lease_id, lease.token, rows)
        except (FailedPrecondition, NotFound) as e:
            self._lost(held, e.message)
            return
        except SeamfillError as e:
            # The rows are visible but not recorded: the lease runs out and whoever gets the
            # chunk next writes it again, idempotently.
            self._failed(held, f"Complete failed: {e.message}")
            return
        log_event(
            logger,
            "seamless.backfill.succeeded",
            dataset=lease.dataset.name,
            rows=rows,
            lease=lease.lease_id,
            worker=self.worker_id,
        )

    async def _fail(self, held: _Held, error: BaseException) -> None:
        lease = held.lease
        fault = classify(error)
        if fault.environment:
            self._pause(error, fault)
            await self._stopped(held)
            return
        reason = fail_reason(error, fault)
        try:
            await self.client.fail(
                self.worker_id, lease.lease_id, lease.token, reason, fault is Fault.CHUNK
            )
        except (FailedPrecondition, NotFound) as e:
            self._lost(held, e.message)
            return
        except SeamfillError as e:
            self._failed(held, f"{reason} (and Fail was not recorded: {e.message})")
            return
        self._failed(held, reason)

    def _pause(self, error: BaseException, fault: Fault) -> None:
        if self.breaker.failure(time.monotonic()):
            log_event(
                logger,
                "seamless.breaker.opened",
                logging.WARNING,
                worker=self.worker_id,
                dependency=fault.value,
                for_s=self.breaker.open_s,
                error=f"{type(error).__name__}: {error}",
            )

    def _resumed(self) -> None:
        if self.breaker.success():
            log_event(logger, "seamless.breaker.closed", worker=self.worker_id)

    async def _stopped(self, held: _Held) -> None:
        """The chunk's task was cancelled: give the lease back unless it is no longer ours."""
        lease = held.lease
        if held.stop is Directive.LOST:
            self._lost(held, held.stop_reason or "the coordinator reports the lease lost")
            return
        with contextlib.suppress(SeamfillError):
            await self.client.release(self.worker_id, lease.lease_id, lease.token)
        log_event(
            logger,
            "seamless.lease.released",
            lease=lease.lease_id,
            token=lease.token,
            worker=self.worker_id,
            stage=held.progress.stage,
            why=_why(held),
            reason=held.stop_reason,
        )

    def _lost(self, held: _Held, why: str) -> None:
        log_event(
            logger,
            "seamless.lease.lost",
            logging.WARNING,
            lease=held.lease.lease_id,
            token=held.lease.token,
            worker=self.worker_id,
            reason=why,
        )

    def _failed(self, held: _Held, reason: str) -> None:
        log_event(
            logger,
            "seamless.backfill.failed",
            logging.WARNING,
            lease=held.lease.lease_id,
            worker=self.worker_id,
            reason=reason,
        )


def _why(held: _Held) -> str:
    if held.stop:
        return held.stop.name.lower()
    if held.task is not None and held.task.done() and not held.task.cancelled():
        return "a dependency is away"
    return "the provider's wait ended"


def _stop(held: _Held, directive: Directive, reason: str) -> None:
    if held.task is None or held.task.done():
        return
    held.stop, held.stop_reason = directive, reason
    held.task.cancel()
