"""The ``Leases`` service: acquire, heartbeat, complete, fail, release, take tokens.

Each call exists twice: as a unary RPC and as a message on ``Session``, the long-lived stream
workers use (one message each way costs a fraction of a unary call). Both run the same handler
body; a session answers a failed call with the status the unary call would have had.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from seamfill.coordinator import metrics
from seamfill.coordinator.keys import ChunkRef
from seamfill.coordinator.leasing import Acquired, Progress
from seamfill.coordinator.limits import check_request
from seamfill.coordinator.service import Ctx, Role, Runtime, Servicer, failed, rpc
from seamfill.core import wire as cv
from seamfill.core.errors import InvalidArgument, SeamfillError
from seamfill.core.logs import log_event
from seamfill.core.timeconv import us_to_text
from seamfill.core.types import Dataset, Directive
from seamfill.v1 import leases_pb2, leases_pb2_grpc

log = logging.getLogger("seamfill.coordinator")

MAX_ACQUIRE = 1_000
MAX_WAIT_MS = 120_000
MAX_WORKER_ID = 256
MAX_REASON = 2_000
# Progress a heartbeat may report for one lease (rows; until is a time, checked as one).
MAX_PROGRESS_ROWS = 1_000_000_000
MAX_TIME_US = 2**62
# Calls a session holds at once: long-polling acquires in flight plus answers not yet sent.
MAX_SESSION_CALLS = 256


def _worker_id(value: str, field: str = "worker_id") -> str:
    if not value or len(value) > MAX_WORKER_ID or "\x00" in value:
        raise InvalidArgument(
            f"{field} {value!r} must be 1..{MAX_WORKER_ID} characters "
            "without NUL: give the worker's stable name"
        )
    return value


def _lease_id(value: str) -> str:
    if not value:
        raise InvalidArgument("lease_id is empty: give the lease_id Acquire returned")
    if len(value) > 2 * MAX_WORKER_ID + 64:
        raise InvalidArgument(
            f"lease_id {value[:40]!r}... is {len(value)} characters: give the lease_id Acquire "
            "returned"
        )
    return value


def _progress(p: leases_pb2.LeaseProgress) -> Progress:
    if not 0 <= p.rows <= MAX_PROGRESS_ROWS:
        raise InvalidArgument(
            f"leases.rows = {p.rows} of lease {p.lease_id[:80]!r} must be within "
            f"[0, {MAX_PROGRESS_ROWS}]: give the rows written so far"
        )
    if not 0 <= p.progress_until_us <= MAX_TIME_US:
        raise InvalidArgument(
            f"leases.progress_until_us = {p.progress_until_us} must be within [0, {MAX_TIME_US}]:"
            " give the last timestamp written, in microseconds"
        )
    return Progress(_lease_id(p.lease_id), p.token, p.progress_until_us, p.rows)


class LeasesService(Servicer, leases_pb2_grpc.LeasesServicer):
    """Acquire (long-poll), Heartbeat, Complete, Fail, Release, TakeTokens; and Session."""

    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        self._sessions: set[_Session] = set()

    @rpc(Role.WORKER)
    async def Acquire(
        self, request: leases_pb2.AcquireRequest, context: Ctx
    ) -> leases_pb2.AcquireResponse:
        worker = _worker_id(request.worker_id)
        if not 0 <= request.max <= MAX_ACQUIRE:
            raise InvalidArgument(
                f"max = {request.max} must be within [0, {MAX_ACQUIRE}] (0 means 1)"
            )
        if not 0 <= request.wait_ms <= MAX_WAIT_MS:
            raise InvalidArgument(f"wait_ms = {request.wait_ms} must be within [0, {MAX_WAIT_MS}]")
        rt = self.rt
        ttl_ms = rt.config.lease_ttl_ms
        if await rt.workers.seen(worker, list(request.sources)):
            return leases_pb2.AcquireResponse(ttl_ms=ttl_ms, drain=True)
        datasets = rt.leasing.datasets_for(request.sources)
        got = await self._acquire_waiting(
            worker, datasets, request.max or 1, request.wait_ms / 1000
        )
        return leases_pb2.AcquireResponse(ttl_ms=ttl_ms, leases=got.leases)

    async def _acquire_waiting(
        self, worker: str, datasets: list[Dataset], want: int, wait_s: float
    ) -> Acquired:
        """Passes over the datasets this replica does not know to be empty; between passes,
        sleep until a wake-up (any replica's scripts publish one) or the deadline."""
        hub = self.rt.hub
        deadline = time.monotonic() + wait_s
        got = Acquired([], {}, {}, set())
        while True:
            # A call that will not wait asks Redis every time: the memory of empty datasets
            # only saves the calls that would otherwise be answered by a wake-up anyway.
            candidates = [ds for ds in datasets if wait_s <= 0 or not hub.known_empty(ds.name)]
            since = {ds.name: hub.epoch(ds.name) for ds in datasets}
            pause = wait_s
            if candidates:
                got = await self.rt.leasing.acquire(worker, candidates, want)
                self._account(got, worker)
                for name in got.short:
                    hub.mark_empty(name, since[name], got.due_in_s)
                if got.due_in_s is not None:
                    pause = got.due_in_s + 0.005  # look again when the first retry is due
                if got.leases:
                    for ds in {lease.dataset.name for lease in got.leases}:
                        hub.mark_busy(ds)
                    return got
            left = deadline - time.monotonic()
            if left <= 0 or not datasets or hub.closing:
                return got
            lapse = hub.lapses_in([ds.name for ds in datasets])
            if lapse is not None:
                pause = min(pause, lapse + 0.005)
            await hub.wait_work(since, min(left, pause))

    def _account(self, got: Acquired, worker: str) -> None:
        for name, n in got.expired.items():
            metrics.LEASE_EXPIRIES.labels(name).inc(n)
            log_event(log, "seamless.lease.expired", logging.WARNING, dataset=name, leases=n)
        for name, n in got.dead.items():
            metrics.DEAD_LETTERED.labels(name).inc(n)
            log_event(log, "seamless.deadletter", logging.WARNING, dataset=name, chunks=n)
        for lease in got.leases:
            log_event(
                log,
                "seamless.lease.granted",
                logging.DEBUG,
                lease=lease.lease_id,
                token=lease.token,
                worker=worker,
            )

    @rpc(Role.WORKER)
    async def Heartbeat(
        self, request: leases_pb2.HeartbeatRequest, context: Ctx
    ) -> leases_pb2.HeartbeatResponse:
        worker = _worker_id(request.worker_id)
        rt = self.rt
        drain = await rt.workers.seen(worker, None)
        progress = [_progress(p) for p in request.leases]
        statuses = await rt.leasing.heartbeat(worker, progress) if progress else []
        out = leases_pb2.HeartbeatResponse(ttl_ms=rt.config.lease_ttl_ms, drain=drain)
        for st in statuses:
            if st.directive is Directive.LOST:
                log_event(
                    log,
                    "seamless.lease.lost",
                    logging.WARNING,
                    lease=st.lease_id,
                    worker=worker,
                    reason=st.reason,
                )
            out.leases.append(
                leases_pb2.LeaseStatus(
                    lease_id=st.lease_id,
                    directive=int(st.directive),  # type: ignore[arg-type]
                    deadline_us=st.deadline_us,
                    reason=st.reason,
                )
            )
        return out

    @rpc(Role.WORKER)
    async def Complete(
        self, request: leases_pb2.CompleteRequest, context: Ctx
    ) -> leases_pb2.CompleteResponse:
        lease_id = _lease_id(request.lease_id)
        worker = _worker_id(request.worker_id)
        rt = self.rt
        done = await rt.leasing.complete(lease_id, request.token, request.rows, worker)
        ds = rt.store.dataset(lease_id.partition("/")[0], "lease_id")
        chunks, rows = metrics.completed(ds.name, ds.source)
        chunks.inc()
        rows.inc(request.rows)
        rt.workers.add_rows(worker, request.rows)
        ref = ChunkRef.parse(lease_id)
        log_event(
            log,
            "seamless.lease.completed",
            lease=lease_id,
            dataset=ds.name,
            symbol=ref.symbol,
            start=us_to_text(ref.cell_us),
            rows=request.rows,
            worker=worker,
        )
        for job in done:
            log_event(log, "seamless.job.done", job=job)
        return leases_pb2.CompleteResponse(jobs_done=done)

    @rpc(Role.WORKER)
    async def Fail(self, request: leases_pb2.FailRequest, context: Ctx) -> leases_pb2.FailResponse:
        lease_id = _lease_id(request.lease_id)
        worker = _worker_id(request.worker_id)
        result = await self.rt.leasing.fail(
            lease_id,
            request.token,
            (request.reason or "failed")[:MAX_REASON],
            request.retryable,
            worker,
        )
        dataset = lease_id.partition("/")[0]
        if result.dead_lettered:
            metrics.DEAD_LETTERED.labels(dataset).inc()
            log_event(
                log,
                "seamless.deadletter",
                logging.WARNING,
                lease=lease_id,
                attempts=result.attempts,
                reason=request.reason,
            )
        else:
            metrics.RETRIES.labels(dataset).inc()
        return leases_pb2.FailResponse(
            attempts=result.attempts,
            dead_lettered=result.dead_lettered,
            retry_at_us=result.retry_at_us,
        )

    @rpc(Role.WORKER)
    async def Release(
        self, request: leases_pb2.ReleaseRequest, context: Ctx
    ) -> leases_pb2.ReleaseResponse:
        lease_id = _lease_id(request.lease_id)
        worker = _worker_id(request.worker_id)
        where = await self.rt.leasing.release(lease_id, request.token, worker)
        log_event(log, "seamless.lease.released", lease=lease_id, worker=worker, now=where)
        return leases_pb2.ReleaseResponse()

    @rpc(Role.WORKER)
    async def TakeTokens(
        self, request: leases_pb2.TakeTokensRequest, context: Ctx
    ) -> leases_pb2.TakeTokensResponse:
        if not request.source:
            raise InvalidArgument("source is empty: give the upstream source name")
        granted, wait_ms = await self.rt.leasing.take_tokens(request.source, request.tokens)
        if not granted:
            metrics.RATE_LIMIT_WAITS.labels(request.source).inc()
        return leases_pb2.TakeTokensResponse(granted=granted, retry_after_ms=wait_ms)

    async def Session(
        self, requests: AsyncIterator[leases_pb2.SessionRequest], context: Ctx
    ) -> AsyncIterator[leases_pb2.SessionResponse]:
        try:
            self.rt.auth.check(context, Role.WORKER, "Session")
        except SeamfillError as e:
            code, err = failed(e, "Session")
            context.set_trailing_metadata((("seamfill-error", type(err).__name__),))
            await context.abort(code, err.message)
        await context.send_initial_metadata(())  # accepted: the client may write now
        session = _Session(self, context)
        reading = session.start(requests)
        self._sessions.add(session)
        try:
            while (answer := await session.next()) is not None:
                yield answer
        finally:
            self._sessions.discard(session)
            reading.cancel()
            session.cancel()

    def close_sessions(self) -> None:
        """The replica is stopping: every session answers what is in flight and ends, so its
        worker moves to another replica instead of holding this one for the whole grace."""
        for session in list(self._sessions):
            session.close()


class _Session:
    """One worker's stream: calls are answered in turn as they arrive, except long-polling
    acquires, which wait in tasks of their own and are answered when they finish; the stream
    ends once the caller closed its side and every call was answered. (Plain deques and
    futures of the loop at hand: this is the hot path.)"""

    def __init__(self, service: LeasesService, context: Ctx) -> None:
        self._service = service
        self._context = context
        self._loop = asyncio.get_running_loop()
        self._answers: deque[leases_pb2.SessionResponse | None] = deque()
        self._ready: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._room: asyncio.Future[None] | None = None
        self._reading: asyncio.Task[None] | None = None
        self._answering = False
        self._closing = False

    def start(self, requests: AsyncIterator[leases_pb2.SessionRequest]) -> asyncio.Task[None]:
        """Read the caller's requests in a task of their own; returns it."""
        self._reading = self._loop.create_task(self._read(requests))
        return self._reading

    def close(self) -> None:
        """Read no more requests; the stream ends once the calls in flight are answered."""
        self._closing = True
        if not self._answering and self._reading is not None:
            self._reading.cancel()  # it waits for the next request: nothing is lost

    async def next(self) -> leases_pb2.SessionResponse | None:
        """The next answer to send; None once the stream is over."""
        while not self._answers:
            self._ready = self._loop.create_future()
            await self._ready
        answer = self._answers.popleft()
        self._make_room()
        return answer

    async def _wait_room(self) -> None:
        # Backpressure: answers not yet sent plus calls in flight stay under the cap, so a
        # caller that does not read its answers stops this reader, and HTTP/2 flow control
        # then stops the caller's writes, instead of the answers queueing here without bound.
        while len(self._answers) + len(self._tasks) >= MAX_SESSION_CALLS:
            self._room = self._loop.create_future()
            await self._room

    def _make_room(self) -> None:
        if self._room is not None and not self._room.done():
            self._room.set_result(None)

    def _put(self, answer: leases_pb2.SessionResponse | None) -> None:
        self._answers.append(answer)
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)

    async def _read(self, requests: AsyncIterator[leases_pb2.SessionRequest]) -> None:
        try:
            try:
                async for request in requests:
                    await self._wait_room()
                    if request.WhichOneof("call") != "acquire" or request.acquire.wait_ms <= 0:
                        # Answered in turn: a quick call costs less than a task of its own.
                        self._answering = True
                        try:
                            await self._answer(request)
                        finally:
                            self._answering = False
                    else:
                        task = self._loop.create_task(self._answer(request))  # a long poll
                        self._tasks.add(task)
                        task.add_done_callback(self._done)
                    if self._closing:
                        break
            except asyncio.CancelledError:
                if not self._closing:
                    raise
            while self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            self._put(None)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._make_room()

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def _answer(self, request: leases_pb2.SessionRequest) -> None:
        kind = request.WhichOneof("call")
        out = leases_pb2.SessionResponse(id=request.id)
        method, handler = _HANDLERS.get(kind or "", ("Session", None))
        t0 = time.perf_counter()
        try:
            if kind is None or handler is None:
                raise InvalidArgument(
                    "call is empty: set one of " + ", ".join(_HANDLERS) + " in SessionRequest"
                )
            inner = getattr(request, kind)
            check_request(inner)
            result = await handler(self._service, inner, self._context)
            getattr(out, kind).CopyFrom(result)
        except Exception as e:
            code, err = failed(e, method)
            out.error.code = code.value[0]
            out.error.message = err.message
            out.error.error = type(err).__name__
        finally:
            metrics.rpc_latency(method).observe(time.perf_counter() - t0)
        self._put(out)


# Session call -> (unary method, its handler body without the unary wrapper).
_HANDLERS: dict[str, tuple[str, Any]] = {
    kind: (method, getattr(LeasesService, method).__wrapped__)
    for kind, method in cv.LEASE_CALLS.items()
}
