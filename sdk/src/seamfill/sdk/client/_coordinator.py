"""The gRPC adapter to the coordinator: typed calls in, domain values out, seamfill errors raised.

:class:`CoordinatorClient` is asyncio (``grpc.aio``); :class:`SyncCoordinatorClient` has the same
methods for synchronous code (it runs a private event loop in a background thread).

Errors: the coordinator names the error class in the trailing metadata ``seamfill-error``; the
client raises that class (falling back to :data:`errors.BY_CODE_NAME` by status code), so
``except LeaseLost`` works on both sides of the wire. UNAVAILABLE (and a deadline that passed) is
:class:`CoordinatorUnavailable`: back off and retry.

Addresses: ``host:port``, ``grpc://host:port`` (plaintext), ``grpcs://host:port`` or
``https://host[:port]`` (TLS). A token is sent as ``authorization: Bearer <token>``, over TLS or
to loopback only, unless ``allow_plaintext_token`` opts in (with a warning).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar

import grpc

from seamfill.core import wire as cv
from seamfill.core.types import (
    Coverage,
    Dataset,
    Job,
    Priority,
    Series,
    TimeRange,
)
from seamfill.sdk.client._admin import AdminCalls
from seamfill.sdk.client._leases import LeaseCalls, LeaseSession
from seamfill.sdk.client._portal import Portal
from seamfill.sdk.client._types import (
    AcquireResult,
    DatasetStats,
    Directive,
    FailResult,
    HeartbeatResult,
    LeaseStatus,
    Progress,
    ReconcileResult,
    Stats,
    WorkerInfo,
    check_token_transport,
    error_from_rpc,
    parse_address,
)
from seamfill.v1 import (
    admin_pb2_grpc,
    coverage_pb2,
    coverage_pb2_grpc,
    leases_pb2_grpc,
)

__all__ = [
    "AcquireResult",
    "CoordinatorClient",
    "DatasetStats",
    "Directive",
    "FailResult",
    "HeartbeatResult",
    "LeaseSession",
    "LeaseStatus",
    "Progress",
    "ReconcileResult",
    "Stats",
    "SyncCoordinatorClient",
    "WorkerInfo",
    "parse_address",
]

T = TypeVar("T")


class CoordinatorClient(AdminCalls, LeaseCalls):
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
        allow_plaintext_token: bool = False,
    ) -> None:
        """``allow_plaintext_token``: send ``token`` without TLS to a host that is not this
        machine (refused otherwise: see :func:`check_token_transport`)."""
        target, secure = parse_address(address, tls)
        check_token_transport(target, secure, token, allow_plaintext_token)
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
            raise error_from_rpc(e) from None

    # -- Coverage ------------------------------------------------------------------------------

    async def _get_coverage(self, series: Series, range: TimeRange) -> Any:
        return await self._call(
            self._coverage.GetCoverage,
            coverage_pb2.GetCoverageRequest(
                series=cv.series_to_pb(series), range=cv.range_to_pb(range)
            ),
        )

    async def get_coverage(self, series: Series, range: TimeRange) -> Coverage:
        return cv.coverage_from_pb(await self._get_coverage(series, range))

    async def get_dataset(self, series: Series, range: TimeRange) -> Dataset:
        """The dataset of ``series`` as the coordinator declares it."""
        m = await self._get_coverage(series, range)
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
            raise error_from_rpc(e) from None
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
            raise error_from_rpc(e) from None
        finally:
            call.cancel()

    async def publish_fingerprint(self, fp: Any) -> Any:
        """Record a :class:`~seamfill.sdk.quality.fingerprint.Fingerprint` for audit; returns it
        stamped."""
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

    # -- Leases (requests and answers in LeaseCalls) ---------------------------------------

    async def _lease_call(self, kind: str, request: Any, timeout: float) -> Any:
        return await self._call(getattr(self._leases, cv.LEASE_CALLS[kind]), request, timeout)

    def lease_session(self) -> LeaseSession:
        """The same lease calls over one long-lived stream (cheaper per call; workers use it)."""
        return LeaseSession(self)


class SyncCoordinatorClient:
    """Every :class:`CoordinatorClient` call for synchronous code: same names, same arguments,
    same results (it runs a private event loop in a background thread)."""

    def __init__(self, address: str, **kw: Any) -> None:
        self._portal = Portal("coordinator client")

        async def make() -> CoordinatorClient:
            return CoordinatorClient(address, **kw)

        try:
            self._client = self._portal.call(make)
        except BaseException:
            self._portal.close()
            raise
        self.address = self._client.address

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if name.startswith("_") or not inspect.iscoroutinefunction(method):
            raise AttributeError(name)

        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            return self._portal.call(method, *args, **kwargs)

        return call

    def close(self) -> None:
        if self._portal.closed:
            return
        try:
            self._portal.call(self._client.close)
        finally:
            self._portal.close()

    def __enter__(self) -> SyncCoordinatorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def watch_job(self, job_id: str, interval_ms: int = 0) -> Iterator[Job]:
        """Job progress until it ends (the last item is the finished job)."""
        return self._portal.iterate(self._client.watch_job(job_id, interval_ms))
