"""The ``Leases`` calls as domain values, over either transport.

:class:`LeaseCalls` builds each request and reads each answer; ``_lease_call`` carries it. The
coordinator client carries calls as unary RPCs; :class:`LeaseSession` carries them as messages
on one ``Leases.Session`` stream, which costs the coordinator a fraction of a unary call per
message (this is how workers talk). Errors are the same seamfill errors either way.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any

import grpc

from seamfill.core import wire as cv
from seamfill.core.errors import CoordinatorUnavailable
from seamfill.core.types import Directive, LeaseStatus
from seamfill.sdk.client._types import (
    AcquireResult,
    FailResult,
    HeartbeatResult,
    Progress,
    error_from_rpc,
    error_from_status,
)
from seamfill.v1 import leases_pb2

_CODES = {code.value[0]: code for code in grpc.StatusCode}
_EOF: Any = grpc.aio.EOF  # type: ignore[attr-defined]  # what read() returns at the end


class LeaseCalls:
    """acquire, heartbeat, complete, fail, release, take_tokens."""

    timeout_s: float

    async def _lease_call(self, kind: str, request: Any, timeout: float) -> Any:
        raise NotImplementedError

    async def acquire(
        self, worker_id: str, sources: Sequence[str] = (), max: int = 1, wait_ms: int = 0
    ) -> AcquireResult:
        m = await self._lease_call(
            "acquire",
            leases_pb2.AcquireRequest(
                worker_id=worker_id, sources=list(sources), max=max, wait_ms=wait_ms
            ),
            self.timeout_s + wait_ms / 1000,
        )
        return AcquireResult(tuple(cv.lease_from_pb(x) for x in m.leases), m.ttl_ms, m.drain)

    async def heartbeat(self, worker_id: str, progress: Sequence[Progress]) -> HeartbeatResult:
        m = await self._lease_call(
            "heartbeat",
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
            self.timeout_s,
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
        m = await self._lease_call(
            "complete",
            leases_pb2.CompleteRequest(
                lease_id=lease_id,
                token=token,
                rows=rows,
                fingerprint=fingerprint,
                worker_id=worker_id,
            ),
            self.timeout_s,
        )
        return list(m.jobs_done)

    async def fail(
        self, worker_id: str, lease_id: str, token: int, reason: str, retryable: bool
    ) -> FailResult:
        m = await self._lease_call(
            "fail",
            leases_pb2.FailRequest(
                lease_id=lease_id,
                token=token,
                reason=reason,
                retryable=retryable,
                worker_id=worker_id,
            ),
            self.timeout_s,
        )
        return FailResult(m.attempts, m.dead_lettered, m.retry_at_us)

    async def release(self, worker_id: str, lease_id: str, token: int) -> None:
        await self._lease_call(
            "release",
            leases_pb2.ReleaseRequest(lease_id=lease_id, token=token, worker_id=worker_id),
            self.timeout_s,
        )

    async def take_tokens(self, worker_id: str, source: str, tokens: int = 1) -> tuple[bool, int]:
        """(granted, retry after ms) from ``source``'s fleet-wide rate limit."""
        m = await self._lease_call(
            "take_tokens",
            leases_pb2.TakeTokensRequest(worker_id=worker_id, source=source, tokens=tokens),
            self.timeout_s,
        )
        return m.granted, m.retry_after_ms


def _expire(fut: asyncio.Future[Any], kind: str, timeout: float) -> None:
    if not fut.done():
        fut.set_exception(
            CoordinatorUnavailable(f"no answer to {kind} within {timeout:g} s: retry with backoff")
        )


class LeaseSession(LeaseCalls):
    """The lease calls over one ``Leases.Session`` stream, opened on the first call and again
    after the stream breaks (calls in flight then fail with :class:`CoordinatorUnavailable`,
    as a unary call would; the caller retries as it would any unavailable call).

    ``client`` is a :class:`~seamfill.sdk.client.CoordinatorClient`: its channel, credentials and
    timeout are used. Closing the session leaves the client open.
    """

    def __init__(self, client: Any) -> None:
        self.timeout_s = client.timeout_s
        self._stub: Any = client._leases  # a LeasesStub on a grpc.aio channel
        self._metadata = client._metadata
        self._call: Any = None
        self._opened: asyncio.Future[Any] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._write = asyncio.Lock()
        self._loop: Any = None  # the loop the stream was opened on (set with the stream)

    def _stream(self) -> tuple[Any, asyncio.Future[Any]]:
        if self._call is None or self._opened is None:
            self._loop = asyncio.get_running_loop()
            self._call = self._stub.Session(metadata=self._metadata)
            self._reader = asyncio.create_task(self._read(self._call))
            # The coordinator answers a stream it accepts with its headers: writing before them
            # would turn a refused credential into a bare INTERNAL "failed to send".
            self._opened = asyncio.ensure_future(self._call.initial_metadata())
        return self._call, self._opened

    async def _read(self, call: Any) -> None:
        error: Exception = CoordinatorUnavailable(
            "the coordinator ended the lease session: retry with backoff"
        )
        try:
            while True:
                m = await call.read()
                if m is _EOF:
                    break
                fut = self._pending.pop(m.id, None)
                if fut is None or fut.done():
                    continue  # its caller gave up waiting
                if m.HasField("error"):
                    code = _CODES.get(m.error.code, grpc.StatusCode.UNKNOWN)
                    fut.set_exception(error_from_status(code, m.error.message, m.error.error))
                else:
                    fut.set_result(getattr(m, m.WhichOneof("result") or "acquire"))
        except grpc.aio.AioRpcError as e:
            error = error_from_rpc(e)
        finally:
            if self._call is call:
                self._call = None
            pending, self._pending = self._pending, {}
            for fut in pending.values():
                if not fut.done():
                    fut.set_exception(error)

    async def _lease_call(self, kind: str, request: Any, timeout: float) -> Any:
        call, opened = self._stream()
        call_id = next(self._ids)
        loop = self._loop
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending[call_id] = fut
        expiry = loop.call_later(timeout, _expire, fut, kind, timeout)
        try:
            try:
                await opened
                async with self._write:
                    await call.write(leases_pb2.SessionRequest(id=call_id, **{kind: request}))
            except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError):
                pass  # the stream broke: the reader fails this call with the stream's status
            return await fut
        finally:
            expiry.cancel()
            self._pending.pop(call_id, None)

    async def close(self) -> None:
        """End the stream; calls in flight fail with :class:`CoordinatorUnavailable`."""
        call, reader = self._call, self._reader
        self._call = self._reader = self._opened = None
        if call is not None:
            call.cancel()
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
