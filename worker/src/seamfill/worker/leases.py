"""What the worker asks of the coordinator's ``Leases`` service, as domain values.

:class:`LeaseService` is the small interface the loop is written against; :class:`GrpcLeases` is
its gRPC implementation (``seamfill.v1.Leases`` over ``grpc.aio``). gRPC failures come out as
seamfill errors: the class the coordinator named in its ``seamfill-error`` trailer, else the
class for the status code (UNAVAILABLE → :class:`CoordinatorUnavailable`).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from seamfill.sdk import errors
from seamfill.sdk._convert import lease_from_pb
from seamfill.sdk.types import Lease

__all__ = [
    "AcquireResult",
    "Directive",
    "FailResult",
    "GrpcLeases",
    "HeartbeatResult",
    "LeaseService",
    "LeaseStatus",
    "Progress",
]


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
    lease_id: str
    token: int
    until_us: int
    rows: int


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


class LeaseService(Protocol):
    """The ``Leases`` calls a worker makes."""

    async def acquire(
        self, worker_id: str, sources: Sequence[str], max: int, wait_ms: int
    ) -> AcquireResult: ...

    async def heartbeat(self, worker_id: str, progress: Sequence[Progress]) -> HeartbeatResult: ...

    async def complete(
        self, worker_id: str, lease_id: str, token: int, rows: int, fingerprint: str = ""
    ) -> None: ...

    async def fail(
        self, worker_id: str, lease_id: str, token: int, reason: str, retryable: bool
    ) -> FailResult: ...

    async def release(self, worker_id: str, lease_id: str, token: int) -> None: ...

    async def take_tokens(self, worker_id: str, source: str, tokens: int) -> tuple[bool, int]: ...

    async def close(self) -> None: ...


def _error(e: grpc.aio.AioRpcError) -> errors.SeamfillError:
    name = ""
    trailing: Any = e.trailing_metadata() or ()
    for key, value in trailing:
        if key == "seamfill-error":
            name = value.decode() if isinstance(value, bytes) else str(value)
    cls = errors.by_name(name) if name else None
    if cls is None:
        cls = errors.BY_CODE_NAME.get(e.code().name, errors.CoordinatorUnavailable)
    message = e.details() or e.code().name
    if cls is errors.FetchError:  # carries a flag the wire message does not
        return errors.FetchError(message, retryable=True)
    try:
        return cls(message)
    except TypeError:
        return errors.CoordinatorUnavailable(message)


class GrpcLeases:
    """:class:`LeaseService` over one ``grpc.aio`` channel to ``address``."""

    def __init__(self, address: str, *, token: str = "", timeout_s: float = 10.0) -> None:
        from seamfill.v1 import leases_pb2_grpc

        self._channel = grpc.aio.insecure_channel(address)
        self._stub = leases_pb2_grpc.LeasesStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout_s = timeout_s

    async def _call(self, method: str, request: Any, extra_timeout_s: float = 0.0) -> Any:
        try:
            return await getattr(self._stub, method)(
                request, metadata=self._metadata, timeout=self._timeout_s + extra_timeout_s
            )
        except grpc.aio.AioRpcError as e:
            raise _error(e) from e

    async def acquire(
        self, worker_id: str, sources: Sequence[str], max: int, wait_ms: int
    ) -> AcquireResult:
        from seamfill.v1 import leases_pb2

        req = leases_pb2.AcquireRequest(
            worker_id=worker_id, sources=list(sources), max=max, wait_ms=wait_ms
        )
        resp = await self._call("Acquire", req, wait_ms / 1000)
        return AcquireResult(tuple(lease_from_pb(m) for m in resp.leases), resp.ttl_ms, resp.drain)

    async def heartbeat(self, worker_id: str, progress: Sequence[Progress]) -> HeartbeatResult:
        from seamfill.v1 import leases_pb2

        req = leases_pb2.HeartbeatRequest(
            worker_id=worker_id,
            leases=[
                leases_pb2.LeaseProgress(
                    lease_id=p.lease_id, token=p.token, progress_until_us=p.until_us, rows=p.rows
                )
                for p in progress
            ],
        )
        resp = await self._call("Heartbeat", req)
        statuses = tuple(
            LeaseStatus(s.lease_id, _directive(s.directive), s.deadline_us, s.reason)
            for s in resp.leases
        )
        return HeartbeatResult(statuses, resp.ttl_ms, resp.drain)

    async def complete(
        self, worker_id: str, lease_id: str, token: int, rows: int, fingerprint: str = ""
    ) -> None:
        from seamfill.v1 import leases_pb2

        await self._call(
            "Complete",
            leases_pb2.CompleteRequest(
                lease_id=lease_id,
                token=token,
                rows=rows,
                fingerprint=fingerprint,
                worker_id=worker_id,
            ),
        )

    async def fail(
        self, worker_id: str, lease_id: str, token: int, reason: str, retryable: bool
    ) -> FailResult:
        from seamfill.v1 import leases_pb2

        resp = await self._call(
            "Fail",
            leases_pb2.FailRequest(
                lease_id=lease_id,
                token=token,
                reason=reason,
                retryable=retryable,
                worker_id=worker_id,
            ),
        )
        return FailResult(resp.attempts, resp.dead_lettered, resp.retry_at_us)

    async def release(self, worker_id: str, lease_id: str, token: int) -> None:
        from seamfill.v1 import leases_pb2

        await self._call(
            "Release",
            leases_pb2.ReleaseRequest(lease_id=lease_id, token=token, worker_id=worker_id),
        )

    async def take_tokens(self, worker_id: str, source: str, tokens: int) -> tuple[bool, int]:
        from seamfill.v1 import leases_pb2

        resp = await self._call(
            "TakeTokens",
            leases_pb2.TakeTokensRequest(worker_id=worker_id, source=source, tokens=tokens),
        )
        return resp.granted, resp.retry_after_ms

    async def close(self) -> None:
        await self._channel.close(None)


def _directive(value: int) -> Directive:
    try:
        return Directive(value)
    except ValueError:
        return Directive.CONTINUE
