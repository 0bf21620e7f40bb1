"""What the worker asks of the coordinator's ``Leases`` service, as domain values.

:class:`LeaseService` is the small interface the loop is written against; the SDK's
:class:`~seamfill.sdk.client.LeaseSession` implements it over one gRPC stream (the
worker's) and :class:`~seamfill.sdk.client.CoordinatorClient` with unary calls, both raising
seamfill errors
(UNAVAILABLE → :class:`~seamfill.core.errors.CoordinatorUnavailable`, a stale token →
:class:`~seamfill.core.errors.LeaseLost`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from seamfill.sdk.client._coordinator import (
    AcquireResult,
    CoordinatorClient,
    Directive,
    FailResult,
    HeartbeatResult,
    LeaseSession,
    LeaseStatus,
    Progress,
)

__all__ = [
    "AcquireResult",
    "CoordinatorClient",
    "Directive",
    "FailResult",
    "HeartbeatResult",
    "LeaseService",
    "LeaseSession",
    "LeaseStatus",
    "Progress",
]


class LeaseService(Protocol):
    """The ``Leases`` calls a worker makes."""

    async def acquire(
        self, worker_id: str, sources: Sequence[str], max: int, wait_ms: int
    ) -> AcquireResult: ...

    async def heartbeat(self, worker_id: str, progress: Sequence[Progress]) -> HeartbeatResult: ...

    async def complete(
        self, worker_id: str, lease_id: str, token: int, rows: int, fingerprint: str = ""
    ) -> Any: ...

    async def fail(
        self, worker_id: str, lease_id: str, token: int, reason: str, retryable: bool
    ) -> FailResult: ...

    async def release(self, worker_id: str, lease_id: str, token: int) -> None: ...

    async def take_tokens(self, worker_id: str, source: str, tokens: int) -> tuple[bool, int]: ...

    async def close(self) -> None: ...
