"""The ``Coverage`` service: coverage, ensure a range, watch a job, fingerprints."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from redis import exceptions as rexc

from seamfill.coordinator.scripts import translate
from seamfill.coordinator.service import Ctx, Role, Servicer, metadata_value, rpc, rpc_stream
from seamfill.core import tracing
from seamfill.core import wire as cv
from seamfill.core.errors import CoordinatorUnavailable, FailedPrecondition, InvalidArgument
from seamfill.core.logs import log_event
from seamfill.core.types import Job, Series, TimeRange
from seamfill.v1 import coverage_pb2, coverage_pb2_grpc

log = logging.getLogger("seamfill.coordinator")
_tracer = tracing.tracer("seamfill.coordinator")

MAX_WAIT_MS = 15 * 60 * 1000
# WatchJob refreshes at least this often even without a notification (scripts publish a job's
# progress at most four times a second, so the last steps before a pause may come only this way).
_WATCH_REFRESH_S = 1.0
_FINGERPRINTS_KEPT = 1000


def request_series(m: Any, field: str = "series") -> Series:
    if not m.HasField(field):
        raise InvalidArgument(f"{field} is missing: give dataset and symbol")
    return cv.series_from_pb(getattr(m, field))


def request_range(m: Any, field: str = "range") -> TimeRange:
    if not m.HasField(field):
        raise InvalidArgument(f"{field} is missing: give start_us and end_us")
    return cv.range_from_pb(getattr(m, field)).validate(field)


class CoverageService(Servicer, coverage_pb2_grpc.CoverageServicer):
    """Coverage, EnsureRange, WatchJob, fingerprints."""

    @rpc(Role.READER)
    async def GetCoverage(
        self, request: coverage_pb2.GetCoverageRequest, context: Ctx
    ) -> coverage_pb2.GetCoverageResponse:
        series, r = request_series(request), request_range(request)
        store = self.rt.store
        ds = store.dataset(series.dataset, symbol=series.symbol)
        return cv.coverage_to_pb(await store.coverage(series, r), ds)

    @rpc(Role.READER)
    async def EnsureRange(
        self, request: coverage_pb2.EnsureRangeRequest, context: Ctx
    ) -> coverage_pb2.EnsureRangeResponse:
        series, r = request_series(request), request_range(request)
        if not 0 <= request.wait_ms <= MAX_WAIT_MS:
            raise InvalidArgument(f"wait_ms = {request.wait_ms} must be within [0, {MAX_WAIT_MS}]")
        store = self.rt.store
        ds = store.dataset(series.dataset, symbol=series.symbol)
        # The job (and so every lease of its chunks) carries this span's context to the workers.
        with tracing.span(
            _tracer,
            "seamfill.coordinator.EnsureRange",
            parent=tracing.context_from_metadata(context.invocation_metadata()),
            attributes={"seamfill.series": str(series)},
        ):
            job = await store.ensure(
                series,
                r,
                cv.priority_from_pb(request.priority),
                requested_by=request.requested_by,
                idempotency_key=request.idempotency_key,
                traceparent=tracing.current_traceparent() or metadata_value(context, "traceparent"),
            )
        out = coverage_pb2.EnsureRangeResponse()
        if job is not None:
            log_event(
                log,
                "seamless.job.created",
                job=job.job_id,
                series=str(series),
                chunks=job.progress.chunks_total,
                priority=job.priority.name.lower(),
            )
            if request.wait_ms > 0 and not job.finished:
                job = await self._wait_finished(job, request.wait_ms / 1000)
            out.job_id = job.job_id
            out.job.CopyFrom(cv.job_to_pb(job))
        out.coverage.CopyFrom(cv.coverage_to_pb(await store.coverage(series, r), ds))
        return out

    async def _wait_finished(self, job: Job, timeout_s: float) -> Job:
        deadline = time.monotonic() + timeout_s
        while not job.finished:
            left = deadline - time.monotonic()
            if left <= 0 or self.rt.hub.closing:
                break
            await self.rt.hub.wait_job(job.job_id, min(left, _WATCH_REFRESH_S))
            job = await self.rt.store.job(job.job_id)
        return job

    @rpc_stream(Role.READER)
    async def WatchJob(
        self, request: coverage_pb2.WatchJobRequest, context: Ctx
    ) -> AsyncIterator[Any]:
        if not request.job_id:
            raise InvalidArgument("job_id is empty: give the id EnsureRange returned")
        interval = max(0.0, request.interval_ms / 1000)
        store = self.rt.store
        job = await store.job(request.job_id)
        last: tuple[Any, ...] | None = None
        while True:
            key = (
                job.state,
                job.progress.chunks_done,
                job.progress.chunks_failed,
                job.progress.chunks_leased,
                job.progress.rows_done,
            )
            if key != last:
                yield cv.job_to_pb(job)
                last = key
            if job.finished:
                return
            if self.rt.hub.closing:
                raise CoordinatorUnavailable("this coordinator replica is stopping: watch again")
            sent = time.monotonic()
            await self.rt.hub.wait_job(job.job_id, _WATCH_REFRESH_S)
            pause = interval - (time.monotonic() - sent)
            if pause > 0:
                await asyncio.sleep(pause)
            job = await store.job(job.job_id)

    @rpc(Role.READER)
    async def PublishFingerprint(
        self, request: coverage_pb2.PublishFingerprintRequest, context: Ctx
    ) -> coverage_pb2.PublishFingerprintResponse:
        fp = coverage_pb2.Fingerprint()
        fp.CopyFrom(request.fingerprint)
        series = request_series(fp)
        request_range(fp)
        store = self.rt.store
        store.dataset(series.dataset, symbol=series.symbol)
        if len(fp.sha256) != 64 or any(c not in "0123456789abcdef" for c in fp.sha256):
            raise InvalidArgument("fingerprint.sha256 must be 64 lowercase hex digits")
        fp.published_us = store.clock()
        key = store.keys.fingerprints(series.dataset, series.symbol)
        # One entry per (range, as-of), first one kept, and no eviction: a burst from one reader
        # can neither replace a published fingerprint nor push the others out.
        field = f"{fp.range.start_us}:{fp.range.end_us}:{fp.as_of_us}"
        blob = base64.b64encode(fp.SerializeToString()).decode()
        try:
            async with store.redis.pipeline(transaction=True) as p:
                p.hsetnx(key, field, blob)
                p.hlen(key)
                p.hget(key, field)
                added, size, kept = await p.execute()
            if added and size > _FINGERPRINTS_KEPT:
                await store.redis.hdel(key, field)
                raise FailedPrecondition(
                    f"{series.symbol!r:.60} of {series.dataset!r:.60} already holds "
                    f"{_FINGERPRINTS_KEPT} published fingerprints: the ones kept are never "
                    "evicted; reuse a (range, as_of) already published"
                )
        except (rexc.RedisError, OSError) as e:
            raise translate(e) from e
        out = coverage_pb2.PublishFingerprintResponse()
        out.fingerprint.ParseFromString(base64.b64decode(kept))
        return out

    @rpc(Role.READER)
    async def GetFingerprints(
        self, request: coverage_pb2.GetFingerprintsRequest, context: Ctx
    ) -> coverage_pb2.GetFingerprintsResponse:
        series = request_series(request)
        store = self.rt.store
        store.dataset(series.dataset, symbol=series.symbol)
        limit = request.limit if request.limit > 0 else 100
        try:
            blobs = await store.redis.hvals(store.keys.fingerprints(series.dataset, series.symbol))
        except (rexc.RedisError, OSError) as e:
            raise translate(e) from e
        kept = []
        for b in blobs:
            fp = coverage_pb2.Fingerprint()
            fp.ParseFromString(base64.b64decode(b))
            kept.append(fp)
        kept.sort(key=lambda f: f.published_us, reverse=True)  # newest first
        out = coverage_pb2.GetFingerprintsResponse()
        out.fingerprints.extend(kept[:limit])
        return out
