"""The one place that touches generated ``*_pb2`` messages: domain types <-> wire messages.

Shared by the SDK client, the coordinator service and the worker, so the wire format has exactly
one reading.
"""

from __future__ import annotations

from typing import Any

from seamfill.core.types import (
    Chunk,
    ChunkState,
    Coverage,
    Dataset,
    Fingerprint,
    Job,
    JobProgress,
    JobState,
    Lease,
    Priority,
    Series,
    TimeRange,
)
from seamfill.v1 import common_pb2, coverage_pb2

# The lease calls a ``Leases.Session`` request carries (its oneof field) -> the unary method of
# the same call. Client and coordinator both dispatch on it.
LEASE_CALLS = {
    "acquire": "Acquire",
    "heartbeat": "Heartbeat",
    "complete": "Complete",
    "fail": "Fail",
    "release": "Release",
    "take_tokens": "TakeTokens",
}
_JOB_STATE_TO_PB = {
    JobState.RUNNING: common_pb2.JOB_STATE_RUNNING,
    JobState.PAUSED: common_pb2.JOB_STATE_PAUSED,
    JobState.CANCELLED: common_pb2.JOB_STATE_CANCELLED,
    JobState.DONE: common_pb2.JOB_STATE_DONE,
    JobState.FAILED: common_pb2.JOB_STATE_FAILED,
}
_JOB_STATE_FROM_PB = {v: k for k, v in _JOB_STATE_TO_PB.items()}
_CHUNK_STATE_TO_PB = {
    ChunkState.QUEUED: common_pb2.CHUNK_STATE_QUEUED,
    ChunkState.LEASED: common_pb2.CHUNK_STATE_LEASED,
    ChunkState.DONE: common_pb2.CHUNK_STATE_DONE,
    ChunkState.DEAD: common_pb2.CHUNK_STATE_DEAD,
    ChunkState.BACKOFF: common_pb2.CHUNK_STATE_BACKOFF,
}
_CHUNK_STATE_FROM_PB = {v: k for k, v in _CHUNK_STATE_TO_PB.items()}


def job_state_to_pb(state: JobState) -> common_pb2.JobState.ValueType:
    return _JOB_STATE_TO_PB[state]


def job_state_from_pb(v: int) -> JobState | None:
    """The job state of a wire value; ``None`` for a value that names no state."""
    return _JOB_STATE_FROM_PB.get(common_pb2.JobState.ValueType(v))


def series_to_pb(s: Series) -> common_pb2.Series:
    return common_pb2.Series(dataset=s.dataset, symbol=s.symbol)


def series_from_pb(m: common_pb2.Series) -> Series:
    return Series(m.dataset, m.symbol)


def range_to_pb(r: TimeRange) -> common_pb2.TimeRange:
    return common_pb2.TimeRange(start_us=r.start_us, end_us=r.end_us)


def range_from_pb(m: common_pb2.TimeRange) -> TimeRange:
    return TimeRange(m.start_us, m.end_us)


def ranges_from_pb(ms: object) -> tuple[TimeRange, ...]:
    return tuple(range_from_pb(m) for m in ms)  # type: ignore[attr-defined]


def _add_ranges(field: Any, rs: tuple[TimeRange, ...]) -> None:
    # Filling the repeated field in place skips building a message per range and copying it.
    for r in rs:
        field.add(start_us=r.start_us, end_us=r.end_us)


def priority_to_pb(p: Priority) -> common_pb2.Priority.ValueType:
    return common_pb2.Priority.ValueType(int(p))


def priority_from_pb(v: int) -> Priority:
    return Priority(v) if v in (1, 2, 3) else Priority.NORMAL


def dataset_to_pb(d: Dataset) -> common_pb2.Dataset:
    return common_pb2.Dataset(
        name=d.name,
        table=d.table,
        source=d.source,
        interval_us=d.interval_us,
        chunk_bars=d.chunk_bars,
        settle_us=d.settle_us,
        max_concurrency=d.max_concurrency,
        kind=d.kind,
        storage=d.storage,
        options=dict(d.options),
    )


def dataset_from_pb(m: common_pb2.Dataset) -> Dataset:
    return Dataset(
        name=m.name,
        table=m.table,
        source=m.source,
        interval_us=m.interval_us,
        chunk_bars=m.chunk_bars,
        settle_us=m.settle_us,
        max_concurrency=m.max_concurrency,
        kind=m.kind or "bars",
        storage=m.storage,
        options=dict(m.options),
    )


def coverage_to_pb(c: Coverage, dataset: Dataset | None = None) -> coverage_pb2.GetCoverageResponse:
    m = coverage_pb2.GetCoverageResponse(
        series=series_to_pb(c.series),
        range=range_to_pb(c.range),
        as_of_us=c.as_of_us,
        settled_until_us=c.settled_until_us,
        dataset=None if dataset is None else dataset_to_pb(dataset),
    )
    _add_ranges(m.covered, c.covered)
    _add_ranges(m.gaps, c.gaps)
    _add_ranges(m.queued, c.queued)
    _add_ranges(m.leased, c.leased)
    return m


def coverage_from_pb(m: coverage_pb2.GetCoverageResponse) -> Coverage:
    return Coverage(
        series=series_from_pb(m.series),
        range=range_from_pb(m.range),
        covered=ranges_from_pb(m.covered),
        gaps=ranges_from_pb(m.gaps),
        queued=ranges_from_pb(m.queued),
        leased=ranges_from_pb(m.leased),
        as_of_us=m.as_of_us,
        settled_until_us=m.settled_until_us,
    )


def progress_to_pb(p: JobProgress) -> common_pb2.JobProgress:
    return common_pb2.JobProgress(
        chunks_total=p.chunks_total,
        chunks_done=p.chunks_done,
        chunks_failed=p.chunks_failed,
        chunks_leased=p.chunks_leased,
        rows_done=p.rows_done,
        rows_per_second=p.rows_per_second,
        eta_seconds=p.eta_seconds,
    )


def progress_from_pb(m: common_pb2.JobProgress) -> JobProgress:
    return JobProgress(
        chunks_total=m.chunks_total,
        chunks_done=m.chunks_done,
        chunks_failed=m.chunks_failed,
        chunks_leased=m.chunks_leased,
        rows_done=m.rows_done,
        rows_per_second=m.rows_per_second,
        eta_seconds=m.eta_seconds,
    )


def job_to_pb(j: Job) -> common_pb2.Job:
    return common_pb2.Job(
        job_id=j.job_id,
        series=series_to_pb(j.series),
        range=range_to_pb(j.range),
        priority=priority_to_pb(j.priority),
        state=_JOB_STATE_TO_PB[j.state],
        progress=progress_to_pb(j.progress),
        requested_by=j.requested_by,
        created_us=j.created_us,
        updated_us=j.updated_us,
        error=j.error,
        traceparent=j.traceparent,
    )


def job_from_pb(m: common_pb2.Job) -> Job:
    return Job(
        job_id=m.job_id,
        series=series_from_pb(m.series),
        range=range_from_pb(m.range),
        priority=priority_from_pb(m.priority),
        state=_JOB_STATE_FROM_PB[m.state],
        progress=progress_from_pb(m.progress),
        requested_by=m.requested_by,
        created_us=m.created_us,
        updated_us=m.updated_us,
        error=m.error,
        traceparent=m.traceparent,
    )


def chunk_to_pb(c: Chunk) -> common_pb2.Chunk:
    return common_pb2.Chunk(
        chunk_id=c.chunk_id,
        series=series_to_pb(c.series),
        range=range_to_pb(c.range),
        state=_CHUNK_STATE_TO_PB[c.state],
        attempts=c.attempts,
        last_error=c.last_error,
        rows=c.rows,
        job_ids=list(c.job_ids),
    )


def chunk_from_pb(m: common_pb2.Chunk) -> Chunk:
    return Chunk(
        chunk_id=m.chunk_id,
        series=series_from_pb(m.series),
        range=range_from_pb(m.range),
        state=_CHUNK_STATE_FROM_PB.get(m.state, ChunkState.QUEUED),
        attempts=m.attempts,
        last_error=m.last_error,
        rows=m.rows,
        job_ids=tuple(m.job_ids),
    )


def lease_to_pb(lease: Lease) -> common_pb2.Lease:
    return common_pb2.Lease(
        lease_id=lease.lease_id,
        token=lease.token,
        chunk=chunk_to_pb(lease.chunk),
        dataset=dataset_to_pb(lease.dataset),
        deadline_us=lease.deadline_us,
        worker_id=lease.worker_id,
        traceparent=lease.traceparent,
        granted_us=lease.granted_us,
        progress_until_us=lease.progress_until_us,
        progress_rows=lease.progress_rows,
    )


def lease_from_pb(m: common_pb2.Lease) -> Lease:
    return Lease(
        lease_id=m.lease_id,
        token=m.token,
        chunk=chunk_from_pb(m.chunk),
        dataset=dataset_from_pb(m.dataset),
        deadline_us=m.deadline_us,
        worker_id=m.worker_id,
        traceparent=m.traceparent,
        granted_us=m.granted_us,
        progress_until_us=m.progress_until_us,
        progress_rows=m.progress_rows,
    )


def fingerprint_to_pb(fp: Fingerprint) -> coverage_pb2.Fingerprint:
    """A :class:`~seamfill.core.types.Fingerprint` as its wire message."""
    return coverage_pb2.Fingerprint(
        series=series_to_pb(fp.series),
        range=range_to_pb(fp.range),
        sha256=fp.sha256,
        as_of_us=fp.as_of_us,
        rows=fp.rows,
        preview=fp.preview,
        published_by=fp.published_by,
        published_us=fp.published_us,
    )


def fingerprint_from_pb(m: coverage_pb2.Fingerprint) -> Fingerprint:
    """The wire message as a :class:`~seamfill.core.types.Fingerprint`."""
    return Fingerprint(
        series=series_from_pb(m.series),
        range=range_from_pb(m.range),
        sha256=m.sha256,
        as_of_us=m.as_of_us,
        rows=m.rows,
        preview=m.preview,
        published_by=m.published_by,
        published_us=m.published_us,
    )
