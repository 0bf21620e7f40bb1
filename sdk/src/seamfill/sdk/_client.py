"""The gRPC adapter to the coordinator: typed calls in, domain values out, seamfill errors raised.

:class:`CoordinatorClient` is asyncio (``grpc.aio``); :class:`SyncCoordinatorClient` has the same
methods for synchronous code (it runs a private event loop in a background thread).

Errors: the coordinator names the error class in the trailing metadata ``seamfill-error``; the
client raises that class (falling back to :data:`errors.BY_CODE_NAME` by status code), so
``except LeaseLost`` works on both sides of the wire. UNAVAILABLE (and a deadline that passed) is
:class:`CoordinatorUnavailable`: back off and retry.

Addresses: ``host:port``, ``grpc://host:port`` (plaintext), ``grpcs://host:port`` or
``https://host[:port]`` (TLS). A token is sent as ``authorization: Bearer <token>``.
"""

from __future__ import annotations

import asyncio
import enum
import threading
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from seamfill.sdk import _convert as cv
from seamfill.sdk import errors
from seamfill.sdk.types import (
    Chunk,
    Coverage,
    Dataset,
    Job,
    JobState,
    Lease,
    Priority,
    Series,
    TimeRange,
)
from seamfill.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    common_pb2,
    coverage_pb2,
    coverage_pb2_grpc,
    leases_pb2,
    leases_pb2_grpc,
)

__all__ = [
    "AcquireResult",
    "CoordinatorClient",
    "DatasetStats",
    "Directive",
    "FailResult",
    "HeartbeatResult",
    "LeaseStatus",
    "Progress",
    "ReconcileResult",
    "Stats",
    "SyncCoordinatorClient",
    "WorkerInfo",
    "parse_address",
]

T = TypeVar("T")


class Directive(enum.Enum):
    """What a heartbeat answer tells the holder of a lease."""

    CONTINUE = 1
    STOP_CANCELLED = 2
    STOP_PAUSED = 3
    LOST = 4


@dataclass(frozen=True, slots=True)
class AcquireResult:
    leases: tuple[Lease, ...]
    ttl_ms: int
    drain: bool = False


@dataclass(frozen=True, slots=True)
class Progress:
    """A heartbeat's report for one lease: written up to ``until_us``, ``rows`` so far."""

    lease_id: str
    token: int
    until_us: int = 0
    rows: int = 0


@dataclass(frozen=True, slots=True)
class LeaseStatus:
    lease_id: str
    directive: Directive
    deadline_us: int = 0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    statuses: tuple[LeaseStatus, ...]
    ttl_ms: int
    drain: bool = False


@dataclass(frozen=True, slots=True)
class FailResult:
    attempts: int
    dead_lettered: bool
    retry_at_us: int


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    worker_id: str
    sources: tuple[str, ...]
    last_seen_us: int
    leases: int
    draining: bool
    rows: int


@dataclass(frozen=True, slots=True)
class DatasetStats:
    dataset: str
    queued: int
    leased: int
    backoff: int
    dead: int
    rows_done: int
    rows_per_second: float
    chunks_done: int
    lease_expiries: int


@dataclass(frozen=True, slots=True)
class Stats:
    datasets: tuple[DatasetStats, ...]
    jobs_running: int
    workers: int
    as_of_us: int


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    covered: tuple[TimeRange, ...]
    removed: tuple[TimeRange, ...]
    added: tuple[TimeRange, ...]
    rows: int


def parse_address(address: str, tls: bool = False) -> tuple[str, bool]:
    """(``host:port``, use TLS) of a coordinator address in any accepted form."""
    text = address.strip()
    for scheme, secure, default_port in (
        ("grpcs://", True, 443),
        ("https://", True, 443),
        ("grpc://", False, 50051),
        ("http://", False, 80),
    ):
        if text.startswith(scheme):
            rest = text[len(scheme) :].rstrip("/")
            if not rest:
                break
            host_port = rest if ":" in rest.rsplit("]", 1)[-1] else f"{rest}:{default_port}"
            return host_port, secure or tls
    else:
        if text and "://" not in text and ":" in text:
            return text, tls
    raise errors.ConfigError(
        f"coordinator address {address!r} is not host:port, grpc://host:port, grpcs://host:port "
        "or https://host[:port]: e.g. 127.0.0.1:50051"
    )


def _error(e: grpc.aio.AioRpcError) -> errors.SeamfillError:
    name = ""
    trailing: Any = e.trailing_metadata() or ()
    for key, value in trailing:
        if key == "seamfill-error":
            name = value.decode() if isinstance(value, bytes) else str(value)
    code = e.code()
    cls = errors.by_name(name) if name else None
    if cls is None or cls is errors.FetchError:
        cls = errors.BY_CODE_NAME.get(code.name, errors.SeamfillError)
    details = e.details() or code.name
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) and not name:
        details = f"coordinator unavailable ({code.name}): {details}"
    return cls(details)


def _job_states(states: Sequence[JobState]) -> list[Any]:
    table = {
        JobState.RUNNING: common_pb2.JOB_STATE_RUNNING,
        JobState.PAUSED: common_pb2.JOB_STATE_PAUSED,
        JobState.CANCELLED: common_pb2.JOB_STATE_CANCELLED,
        JobState.DONE: common_pb2.JOB_STATE_DONE,
        JobState.FAILED: common_pb2.JOB_STATE_FAILED,
    }
    return [table[s] for s in states]


class CoordinatorClient:
    """asyncio client of the coordinator's Coverage, Leases and Admin services."""

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        tls: bool = False,
        timeout_s: float = 10.0,
        timeout: float | None = None,
        root_certificates: bytes | None = None,
    ) -> None:
        target, secure = parse_address(address, tls)
        self.address = target
        self.timeout_s = timeout if timeout is not None else timeout_s
        options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        if secure:
            creds = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self._channel = grpc.aio.secure_channel(target, creds, options=options)
        else:
            self._channel = grpc.aio.insecure_channel(target, options=options)
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )
        self._coverage = coverage_pb2_grpc.CoverageStub(self._channel)
        self._leases = leases_pb2_grpc.LeasesStub(self._channel)
        self._admin = admin_pb2_grpc.AdminStub(self._channel)

    async def close(self) -> None:
        await self._channel.close(None)

    async def __aenter__(self) -> CoordinatorClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        try:
            return await method(request, timeout=timeout or self.timeout_s, metadata=self._metadata)
        except grpc.aio.AioRpcError as e:
            raise _error(e) from None

    # -- Coverage ------------------------------------------------------------------------------

    async def get_coverage(self, series: Series, range: TimeRange) -> Coverage:
        m = await self._call(
            self._coverage.GetCoverage,
            coverage_pb2.GetCoverageRequest(
                series=cv.series_to_pb(series), range=cv.range_to_pb(range)
            ),
        )
        return cv.coverage_from_pb(m)

    async def get_dataset(self, series: Series, range: TimeRange) -> Dataset:
        """The dataset of ``series`` as the coordinator declares it."""
        m = await self._call(
            self._coverage.GetCoverage,
            coverage_pb2.GetCoverageRequest(
                series=cv.series_to_pb(series), range=cv.range_to_pb(range)
            ),
        )
        return cv.dataset_from_pb(m.dataset)

    async def ensure_range(
        self,
        series: Series,
        range: TimeRange,
        priority: Priority = Priority.NORMAL,
        *,
        wait_ms: int = 0,
        requested_by: str = "",
        traceparent: str = "",
    ) -> Job | None:
        """Plan the gaps of ``range`` as a job; ``None`` when nothing needed filling."""
        job, _ = await self.ensure_range_with_coverage(
            series,
            range,
            priority,
            wait_ms=wait_ms,
            requested_by=requested_by,
            traceparent=traceparent,
        )
        return job

    async def ensure_range_with_coverage(
        self,
        series: Series,
        range: TimeRange,
        priority: Priority = Priority.NORMAL,
        *,
        wait_ms: int = 0,
        requested_by: str = "",
        traceparent: str = "",
    ) -> tuple[Job | None, Coverage]:
        """Like :meth:`ensure_range`, also returning the coverage as of the answer."""
        md = self._metadata + ((("traceparent", traceparent),) if traceparent else ())
        req = coverage_pb2.EnsureRangeRequest(
            series=cv.series_to_pb(series),
            range=cv.range_to_pb(range),
            priority=cv.priority_to_pb(priority),
            wait_ms=wait_ms,
            requested_by=requested_by,
        )
        try:
            m = await self._coverage.EnsureRange(
                req, timeout=self.timeout_s + wait_ms / 1000, metadata=md
            )
        except grpc.aio.AioRpcError as e:
            raise _error(e) from None
        job = cv.job_from_pb(m.job) if m.job_id else None
        return job, cv.coverage_from_pb(m.coverage)

    async def watch_job(self, job_id: str, interval_ms: int = 0) -> AsyncIterator[Job]:
        """Job progress until it ends (the last item is the finished job)."""
        call = self._coverage.WatchJob(
            coverage_pb2.WatchJobRequest(job_id=job_id, interval_ms=interval_ms),
            metadata=self._metadata,
        )
        try:
            async for m in call:
                yield cv.job_from_pb(m)
        except grpc.aio.AioRpcError as e:
            raise _error(e) from None
        finally:
            call.cancel()

    async def publish_fingerprint(self, fp: Any) -> Any:
        """Record a :class:`seamfill.sdk.fingerprint.Fingerprint` for audit; returns it stamped."""
        m = await self._call(
            self._coverage.PublishFingerprint,
            coverage_pb2.PublishFingerprintRequest(fingerprint=cv.fingerprint_to_pb(fp)),
        )
        return cv.fingerprint_from_pb(m.fingerprint)

    async def get_fingerprints(self, series: Series, limit: int = 100) -> list[Any]:
        m = await self._call(
            self._coverage.GetFingerprints,
            coverage_pb2.GetFingerprintsRequest(series=cv.series_to_pb(series), limit=limit),
        )
        return [cv.fingerprint_from_pb(f) for f in m.fingerprints]

    # -- Leases --------------------------------------------------------------------------------

    async def acquire(
        self, worker_id: str, sources: Sequence[str] = (), max: int = 1, wait_ms: int = 0
    ) -> AcquireResult:
        m = await self._call(
            self._leases.Acquire,
            leases_pb2.AcquireRequest(
                worker_id=worker_id, sources=list(sources), max=max, wait_ms=wait_ms
            ),
            timeout=self.timeout_s + wait_ms / 1000,
        )
        return AcquireResult(tuple(cv.lease_from_pb(x) for x in m.leases), m.ttl_ms, m.drain)

    async def heartbeat(self, worker_id: str, progress: Sequence[Progress]) -> HeartbeatResult:
        m = await self._call(
            self._leases.Heartbeat,
            leases_pb2.HeartbeatRequest(
                worker_id=worker_id,
                leases=[
                    leases_pb2.LeaseProgress(
                        lease_id=p.lease_id,
                        token=p.token,
                        progress_until_us=p.until_us,
                        rows=p.rows,
                    )
                    for p in progress
                ],
            ),
        )
        return HeartbeatResult(
            tuple(
                LeaseStatus(s.lease_id, Directive(s.directive or 1), s.deadline_us, s.reason)
                for s in m.leases
            ),
            m.ttl_ms,
            m.drain,
        )

    async def complete(
        self, worker_id: str, lease_id: str, token: int, rows: int, fingerprint: str = ""
    ) -> list[str]:
        """Mark the chunk covered (rows written and visible); returns the jobs it finished."""
        m = await self._call(
            self._leases.Complete,
            leases_pb2.CompleteRequest(
                lease_id=lease_id,
                token=token,
                rows=rows,
                fingerprint=fingerprint,
                worker_id=worker_id,
            ),
        )
        return list(m.jobs_done)

    async def fail(
        self, worker_id: str, lease_id: str, token: int, reason: str, retryable: bool
    ) -> FailResult:
        m = await self._call(
            self._leases.Fail,
            leases_pb2.FailRequest(
                lease_id=lease_id,
                token=token,
                reason=reason,
                retryable=retryable,
                worker_id=worker_id,
            ),
        )
        return FailResult(m.attempts, m.dead_lettered, m.retry_at_us)

    async def release(self, worker_id: str, lease_id: str, token: int) -> None:
        await self._call(
            self._leases.Release,
            leases_pb2.ReleaseRequest(lease_id=lease_id, token=token, worker_id=worker_id),
        )

    async def take_tokens(self, worker_id: str, source: str, tokens: int = 1) -> tuple[bool, int]:
        """(granted, retry after ms) from ``source``'s fleet-wide rate limit."""
        m = await self._call(
            self._leases.TakeTokens,
            leases_pb2.TakeTokensRequest(worker_id=worker_id, source=source, tokens=tokens),
        )
        return m.granted, m.retry_after_ms

    # -- Admin ---------------------------------------------------------------------------------

    async def list_jobs(self, states: Sequence[JobState] = (), limit: int = 100) -> list[Job]:
        m = await self._call(
            self._admin.ListJobs, admin_pb2.ListJobsRequest(states=_job_states(states), limit=limit)
        )
        return [cv.job_from_pb(j) for j in m.jobs]

    async def _job_call(self, method: Any, job_id: str) -> Job:
        return cv.job_from_pb(await self._call(method, admin_pb2.JobRequest(job_id=job_id)))

    async def get_job(self, job_id: str) -> Job:
        return await self._job_call(self._admin.GetJob, job_id)

    async def pause_job(self, job_id: str) -> Job:
        return await self._job_call(self._admin.PauseJob, job_id)

    async def resume_job(self, job_id: str) -> Job:
        return await self._job_call(self._admin.ResumeJob, job_id)

    async def cancel_job(self, job_id: str) -> Job:
        return await self._job_call(self._admin.CancelJob, job_id)

    async def list_leases(self, dataset: str = "", limit: int = 100) -> list[Lease]:
        m = await self._call(
            self._admin.ListLeases, admin_pb2.ListLeasesRequest(dataset=dataset, limit=limit)
        )
        return [cv.lease_from_pb(x) for x in m.leases]

    async def list_workers(self) -> list[WorkerInfo]:
        m = await self._call(self._admin.ListWorkers, admin_pb2.ListWorkersRequest())
        return [_worker(w) for w in m.workers]

    async def drain_worker(self, worker_id: str) -> WorkerInfo:
        return _worker(
            await self._call(
                self._admin.DrainWorker, admin_pb2.DrainWorkerRequest(worker_id=worker_id)
            )
        )

    async def list_dead_letters(self, dataset: str = "", limit: int = 100) -> list[Chunk]:
        m = await self._call(
            self._admin.ListDeadLetters,
            admin_pb2.ListDeadLettersRequest(dataset=dataset, limit=limit),
        )
        return [cv.chunk_from_pb(c) for c in m.chunks]

    async def requeue_dead_letters(self, chunk_ids: Sequence[str] = (), all: bool = False) -> int:
        m = await self._call(
            self._admin.RequeueDeadLetters,
            admin_pb2.RequeueDeadLettersRequest(chunk_ids=list(chunk_ids), all=all),
        )
        return int(m.requeued)

    async def list_datasets(self) -> list[Dataset]:
        m = await self._call(self._admin.ListDatasets, admin_pb2.ListDatasetsRequest())
        return [cv.dataset_from_pb(d) for d in m.datasets]

    async def get_stats(self) -> Stats:
        m = await self._call(self._admin.GetStats, admin_pb2.GetStatsRequest())
        return Stats(
            tuple(
                DatasetStats(
                    d.dataset,
                    d.queued,
                    d.leased,
                    d.backoff,
                    d.dead,
                    d.rows_done,
                    d.rows_per_second,
                    d.chunks_done,
                    d.lease_expiries,
                )
                for d in m.datasets
            ),
            m.jobs_running,
            m.workers,
            m.as_of_us,
        )

    async def reconcile(self, series: Series, range: TimeRange) -> ReconcileResult:
        m = await self._call(
            self._admin.Reconcile,
            admin_pb2.ReconcileRequest(series=cv.series_to_pb(series), range=cv.range_to_pb(range)),
            timeout=120.0,
        )
        return ReconcileResult(
            cv.ranges_from_pb(m.covered),
            cv.ranges_from_pb(m.removed),
            cv.ranges_from_pb(m.added),
            m.rows,
        )


def _worker(w: admin_pb2.Worker) -> WorkerInfo:
    return WorkerInfo(w.worker_id, tuple(w.sources), w.last_seen_us, w.leases, w.draining, w.rows)


class SyncCoordinatorClient:
    """The :class:`CoordinatorClient` calls for synchronous code (one private loop thread)."""

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        tls: bool = False,
        timeout_s: float = 10.0,
        timeout: float | None = None,
        root_certificates: bytes | None = None,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="seamfill-client"
        )
        self._thread.start()

        async def make() -> CoordinatorClient:
            return CoordinatorClient(
                address,
                token=token,
                tls=tls,
                timeout_s=timeout_s,
                timeout=timeout,
                root_certificates=root_certificates,
            )

        try:
            self._client = self._run(make())
        except BaseException:
            self._stop_loop()
            raise
        self.address = self._client.address

    def _run(self, coro: Awaitable[T]) -> T:
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]
        return fut.result()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self._client.close())
        self._stop_loop()

    def __enter__(self) -> SyncCoordinatorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def watch_job(self, job_id: str, interval_ms: int = 0) -> Iterator[Job]:
        agen = self._client.watch_job(job_id, interval_ms)
        try:
            while True:
                try:
                    yield self._run(agen.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            self._run(agen.aclose())  # type: ignore[attr-defined]

    def get_coverage(self, series: Series, range: TimeRange) -> Coverage:
        return self._run(self._client.get_coverage(series, range))

    def get_dataset(self, series: Series, range: TimeRange) -> Dataset:
        return self._run(self._client.get_dataset(series, range))

    def ensure_range(
        self, series: Series, range: TimeRange, priority: Priority = Priority.NORMAL, **kw: Any
    ) -> Job | None:
        return self._run(self._client.ensure_range(series, range, priority, **kw))

    def ensure_range_with_coverage(
        self, series: Series, range: TimeRange, priority: Priority = Priority.NORMAL, **kw: Any
    ) -> tuple[Job | None, Coverage]:
        return self._run(self._client.ensure_range_with_coverage(series, range, priority, **kw))

    def publish_fingerprint(self, fp: Any) -> Any:
        return self._run(self._client.publish_fingerprint(fp))

    def get_fingerprints(self, series: Series, limit: int = 100) -> list[Any]:
        return self._run(self._client.get_fingerprints(series, limit))

    def acquire(
        self, worker_id: str, sources: Sequence[str] = (), max: int = 1, wait_ms: int = 0
    ) -> AcquireResult:
        return self._run(self._client.acquire(worker_id, sources, max, wait_ms))

    def heartbeat(self, worker_id: str, progress: Sequence[Progress]) -> HeartbeatResult:
        return self._run(self._client.heartbeat(worker_id, progress))

    def complete(
        self, worker_id: str, lease_id: str, token: int, rows: int, fingerprint: str = ""
    ) -> list[str]:
        return self._run(self._client.complete(worker_id, lease_id, token, rows, fingerprint))

    def fail(
        self, worker_id: str, lease_id: str, token: int, reason: str, retryable: bool
    ) -> FailResult:
        return self._run(self._client.fail(worker_id, lease_id, token, reason, retryable))

    def release(self, worker_id: str, lease_id: str, token: int) -> None:
        self._run(self._client.release(worker_id, lease_id, token))

    def take_tokens(self, worker_id: str, source: str, tokens: int = 1) -> tuple[bool, int]:
        return self._run(self._client.take_tokens(worker_id, source, tokens))

    def list_jobs(self, states: Sequence[JobState] = (), limit: int = 100) -> list[Job]:
        return self._run(self._client.list_jobs(states, limit))

    def get_job(self, job_id: str) -> Job:
        return self._run(self._client.get_job(job_id))

    def pause_job(self, job_id: str) -> Job:
        return self._run(self._client.pause_job(job_id))

    def resume_job(self, job_id: str) -> Job:
        return self._run(self._client.resume_job(job_id))

    def cancel_job(self, job_id: str) -> Job:
        return self._run(self._client.cancel_job(job_id))

    def list_leases(self, dataset: str = "", limit: int = 100) -> list[Lease]:
        return self._run(self._client.list_leases(dataset, limit))

    def list_workers(self) -> list[WorkerInfo]:
        return self._run(self._client.list_workers())

    def drain_worker(self, worker_id: str) -> WorkerInfo:
        return self._run(self._client.drain_worker(worker_id))

    def list_dead_letters(self, dataset: str = "", limit: int = 100) -> list[Chunk]:
        return self._run(self._client.list_dead_letters(dataset, limit))

    def requeue_dead_letters(self, chunk_ids: Sequence[str] = (), all: bool = False) -> int:
        return self._run(self._client.requeue_dead_letters(chunk_ids, all))

    def list_datasets(self) -> list[Dataset]:
        return self._run(self._client.list_datasets())

    def get_stats(self) -> Stats:
        return self._run(self._client.get_stats())

    def reconcile(self, series: Series, range: TimeRange) -> ReconcileResult:
        return self._run(self._client.reconcile(series, range))
