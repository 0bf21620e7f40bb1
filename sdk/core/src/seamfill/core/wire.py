"""The one place that touches generated ``*_pb2`` messages: domain types <-> wire messages.

Shared by the SDK client, the coordinator service and the worker, so the wire format has exactly
one reading.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Generic, TypeVar

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
D = TypeVar("D")
M = TypeVar("M", bound=Any)


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


class _Mapping(Generic[D, M]):
    """One domain dataclass <-> one message, field by field, by name.

    Fields that both have are copied; ``convert`` gives a ``(to_pb, from_pb)`` pair for fields
    whose values differ in kind (nested messages, enums, repeated fields); ``defaults`` replaces
    a wire value that is empty (proto3 cannot tell unset from zero) with the domain's default.
    """

    def __init__(
        self,
        domain: type[D],
        message: type[M],
        convert: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] | None = None,
        defaults: dict[str, Any] | None = None,
    ) -> None:
        wire = set(message.DESCRIPTOR.fields_by_name)
        names = [f.name for f in dataclasses.fields(domain)]  # type: ignore[arg-type]
        self._domain, self._message = domain, message
        self._convert = convert or {}
        self._defaults = defaults or {}
        self._names = tuple(n for n in names if n in wire)
        missing = set(self._convert) - set(self._names)
        assert not missing, f"{domain.__name__}: no such shared field {sorted(missing)}"

    def to_pb(self, obj: D) -> M:
        conv = self._convert
        msg: M = self._message(
            **{
                n: conv[n][0](getattr(obj, n)) if n in conv else getattr(obj, n)
                for n in self._names
            }
        )
        return msg

    def from_pb(self, m: M) -> D:
        conv, defaults = self._convert, self._defaults
        kwargs = {}
        for n in self._names:
            v = getattr(m, n)
            if n in conv:
                v = conv[n][1](v)
            elif not v and n in defaults:
                v = defaults[n]
            kwargs[n] = v
        return self._domain(**kwargs)


_SERIES = (series_to_pb, series_from_pb)
_RANGE = (range_to_pb, range_from_pb)
_DICT = (dict, dict)
_DATASET = _Mapping(Dataset, common_pb2.Dataset, {"options": _DICT}, defaults={"kind": "bars"})
_PROGRESS = _Mapping(JobProgress, common_pb2.JobProgress)
_JOB = _Mapping(
    Job,
    common_pb2.Job,
    {
        "series": _SERIES,
        "range": _RANGE,
        "priority": (priority_to_pb, priority_from_pb),
        "state": (_JOB_STATE_TO_PB.__getitem__, _JOB_STATE_FROM_PB.__getitem__),
        "progress": (_PROGRESS.to_pb, _PROGRESS.from_pb),
    },
)
_CHUNK = _Mapping(
    Chunk,
    common_pb2.Chunk,
    {
        "series": _SERIES,
        "range": _RANGE,
        "state": (
            _CHUNK_STATE_TO_PB.__getitem__,
            lambda v: _CHUNK_STATE_FROM_PB.get(v, ChunkState.QUEUED),
        ),
        "job_ids": (list, tuple),
    },
)
_LEASE = _Mapping(
    Lease,
    common_pb2.Lease,
    {"chunk": (_CHUNK.to_pb, _CHUNK.from_pb), "dataset": (_DATASET.to_pb, _DATASET.from_pb)},
)
_FINGERPRINT = _Mapping(Fingerprint, coverage_pb2.Fingerprint, {"series": _SERIES, "range": _RANGE})

dataset_to_pb = _DATASET.to_pb
dataset_from_pb = _DATASET.from_pb
progress_to_pb = _PROGRESS.to_pb
progress_from_pb = _PROGRESS.from_pb
job_to_pb = _JOB.to_pb
job_from_pb = _JOB.from_pb
chunk_to_pb = _CHUNK.to_pb
chunk_from_pb = _CHUNK.from_pb
lease_to_pb = _LEASE.to_pb
lease_from_pb = _LEASE.from_pb
fingerprint_to_pb = _FINGERPRINT.to_pb
fingerprint_from_pb = _FINGERPRINT.from_pb


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
