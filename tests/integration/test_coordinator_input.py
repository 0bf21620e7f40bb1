"""Bad input gets its precise status and changes nothing; hostile symbols round-trip; auth."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis

from seamfill.core import errors
from seamfill.core.types import Series, TimeRange
from seamfill.v1 import common_pb2, coverage_pb2, coverage_pb2_grpc, leases_pb2, leases_pb2_grpc
from tests.coordinator_fixtures import (
    RunningCoordinator,
    start_coordinator_process,
    write_config,
)

MIN = 60_000_000
HOUR = 60 * MIN
pytestmark = pytest.mark.integration
HOSTILE = [
    "a,b",
    "a b",
    "k=v",
    'q"uote',
    "it's",
    "line\nbreak",
    "tab\there",
    "ünïcødé-₿",
    "日本",
    "{tag}",
    "a}b{c",
    "x@123",
    "with/slash",
    "semi;colon",
    "back\\slash",
    "🚀",
    "*",
    "?[a]",
]


def snapshot(r: redis.Redis, prefix: str) -> dict[bytes, bytes | None]:
    return {k: r.dump(k) for k in sorted(r.scan_iter(match=prefix + "*", count=1000))}


def assert_unchanged(
    r: redis.Redis, prefix: str, before: dict[bytes, bytes | None], what: object
) -> None:
    """No key created or changed since ``before``; only a token bucket may have gone, by its
    own TTL (one left idle expires while a long walk runs)."""
    after = snapshot(r, prefix)
    assert set(after) <= set(before), (what, sorted(set(after) - set(before)))
    assert {k: v for k, v in after.items() if before[k] != v} == {}, what
    gone = [k for k in before if k not in after]
    assert all(k.endswith(b":bucket") for k in gone), (what, gone)


@pytest.fixture
def rdb(coordinator: RunningCoordinator) -> Iterator[redis.Redis]:
    r = redis.Redis.from_url(coordinator.redis_url)
    yield r
    r.close()


@pytest.fixture
def stubs(
    coordinator: RunningCoordinator,
) -> Iterator[tuple[coverage_pb2_grpc.CoverageStub, leases_pb2_grpc.LeasesStub]]:
    with grpc.insecure_channel(coordinator.address) as ch:
        yield coverage_pb2_grpc.CoverageStub(ch), leases_pb2_grpc.LeasesStub(ch)


def _code(call: Callable[[], object]) -> tuple[grpc.StatusCode, str, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    e = info.value
    name = dict(e.trailing_metadata() or ()).get("seamfill-error", "")  # type: ignore[attr-defined]
    return e.code(), e.details(), name  # type: ignore[attr-defined]


def test_malformed_requests_get_precise_codes_and_change_nothing(
    coordinator: RunningCoordinator, rdb: redis.Redis, stubs: tuple[object, object]
) -> None:
    cov, lea = stubs
    c = coordinator.client()
    ds = coordinator.dataset
    c.ensure_range(Series(ds, "BTC"), TimeRange(0, 2 * HOUR))  # some state to protect
    lease = c.acquire("w1").leases[0]
    before = snapshot(rdb, coordinator.key_prefix)

    def ensure(dataset: str, symbol: str, start: int, end: int) -> Callable[[], object]:
        req = coverage_pb2.EnsureRangeRequest(
            series=common_pb2.Series(dataset=dataset, symbol=symbol),
            range=common_pb2.TimeRange(start_us=start, end_us=end),
        )
        return lambda: cov.EnsureRange(req)  # type: ignore[attr-defined]

    cases = [
        (ensure(ds, "BTC", 2 * HOUR, 0), "INVALID_ARGUMENT", "InvalidRange", "range.end_us"),
        (ensure(ds, "BTC", 0, 90 * MIN + 1), "INVALID_ARGUMENT", "InvalidRange", "aligned"),
        (ensure(ds, "BTC", 0, 200_000 * HOUR), "INVALID_ARGUMENT", "InvalidRange", "chunks"),
        (ensure(ds, "BTC", -HOUR, 0), "INVALID_ARGUMENT", "InvalidRange", "range.start_us"),
        (ensure("nope", "BTC", 0, HOUR), "NOT_FOUND", "DatasetNotFound", "series.dataset"),
        (ensure(ds, "", 0, HOUR), "INVALID_ARGUMENT", "InvalidSeries", "series.symbol"),
        (ensure(ds, "a\x00b", 0, HOUR), "INVALID_ARGUMENT", "InvalidSeries", "NUL"),
        (ensure(ds, "x" * 300, 0, HOUR), "INVALID_ARGUMENT", "InvalidSeries", "longer"),
        (
            lambda: lea.Complete(
                leases_pb2.CompleteRequest(  # type: ignore[attr-defined]
                    worker_id="w1", lease_id=lease.lease_id, token=lease.token + 7, rows=1
                )
            ),
            "FAILED_PRECONDITION",
            "LeaseLost",
            "stale",
        ),
        (
            lambda: lea.Complete(
                leases_pb2.CompleteRequest(  # type: ignore[attr-defined]
                    worker_id="w1", lease_id=lease.lease_id, token=0, rows=1
                )
            ),
            "FAILED_PRECONDITION",
            "LeaseLost",
            "",
        ),
        (
            lambda: lea.Fail(
                leases_pb2.FailRequest(  # type: ignore[attr-defined]
                    worker_id="w1", lease_id=lease.lease_id, token=lease.token - 1, reason="x"
                )
            ),
            "FAILED_PRECONDITION",
            "LeaseLost",
            "stale",
        ),
        (
            lambda: lea.Release(
                leases_pb2.ReleaseRequest(  # type: ignore[attr-defined]
                    worker_id="w1", lease_id=lease.lease_id, token=999999
                )
            ),
            "FAILED_PRECONDITION",
            "LeaseLost",
            "",
        ),
        (
            lambda: lea.Complete(
                leases_pb2.CompleteRequest(  # type: ignore[attr-defined]
                    worker_id="w1", lease_id="forged", token=1
                )
            ),
            "NOT_FOUND",
            "LeaseNotFound",
            "lease_id",
        ),
        (
            lambda: lea.Complete(
                leases_pb2.CompleteRequest(  # type: ignore[attr-defined]
                    worker_id="w1", lease_id="nope/BTC@0", token=1
                )
            ),
            "NOT_FOUND",
            "LeaseNotFound",
            "nope",
        ),
        (
            lambda: lea.Complete(
                leases_pb2.CompleteRequest(  # type: ignore[attr-defined]
                    worker_id="w1", lease_id=lease.lease_id, token=lease.token, rows=-1
                )
            ),
            "INVALID_ARGUMENT",
            "InvalidArgument",
            "rows",
        ),
        (
            lambda: lea.Acquire(
                leases_pb2.AcquireRequest(  # type: ignore[attr-defined]
                    worker_id=""
                )
            ),
            "INVALID_ARGUMENT",
            "InvalidArgument",
            "worker_id",
        ),
        (
            lambda: lea.Acquire(
                leases_pb2.AcquireRequest(  # type: ignore[attr-defined]
                    worker_id="w", max=-1
                )
            ),
            "INVALID_ARGUMENT",
            "InvalidArgument",
            "max",
        ),
    ]
    for call, code, name, needle in cases:
        got_code, details, got_name = _code(call)
        assert (got_code.name, got_name) == (code, name), details
        assert needle in details
    assert snapshot(rdb, coordinator.key_prefix) == before


@pytest.mark.parametrize("symbol", HOSTILE)
def test_hostile_symbols_round_trip(coordinator: RunningCoordinator, symbol: str) -> None:
    c = coordinator.client()
    s = Series(coordinator.dataset, symbol)
    job = c.ensure_range(s, TimeRange(0, HOUR))
    assert job is not None and job.series == s
    lease = c.acquire("w").leases[0]
    assert lease.chunk.series == s and lease.lease_id == f"{s.dataset}/{symbol}@0"
    c.complete("w", lease.lease_id, lease.token, 60)
    assert c.get_coverage(s, TimeRange(0, HOUR)).covered == (TimeRange(0, HOUR),)
    assert c.get_coverage(Series(s.dataset, symbol + "x"), TimeRange(0, HOUR)).covered == ()
    assert c.get_job(job.job_id).series == s


def test_auth_roles(coordinator_factory: Callable[..., RunningCoordinator]) -> None:
    co = coordinator_factory(auth={"reader": ["r-tok"], "worker": ["w-tok"], "admin": ["a-tok"]})
    s, r = Series(co.dataset, "BTC"), TimeRange(0, HOUR)
    with pytest.raises(errors.Unauthenticated, match="bearer token"):
        co.client().get_coverage(s, r)
    with pytest.raises(errors.Unauthenticated):
        co.client("forged").get_coverage(s, r)
    reader, worker, admin = co.client("r-tok"), co.client("w-tok"), co.client("a-tok")
    reader.get_coverage(s, r)
    with pytest.raises(errors.PermissionDenied, match="worker role"):
        reader.acquire("w")
    with pytest.raises(errors.PermissionDenied, match="admin role"):
        worker.get_stats()
    worker.ensure_range(s, r)
    assert len(worker.acquire("w").leases) == 1
    assert admin.get_stats().datasets[0].leased == 1


def _string_fields(descriptor: Any, prefix: str = "", depth: int = 0) -> Iterator[tuple[str, Any]]:
    """(dotted path, field) of every string or bytes field, one level of nesting."""
    from google.protobuf.descriptor import FieldDescriptor

    for f in descriptor.fields:
        if f.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
            yield prefix + f.name, f
        elif (
            f.type == FieldDescriptor.TYPE_MESSAGE
            and depth == 0
            and not f.message_type.GetOptions().map_entry
        ):
            yield from _string_fields(f.message_type, f"{prefix}{f.name}.", depth + 1)


def _request_with(cls: Any, path: str, text: str) -> Any:
    from google.protobuf.descriptor import FieldDescriptor

    msg = cls()
    leaf = msg.DESCRIPTOR
    for name in path.split("."):
        f = leaf.fields_by_name[name]
        leaf = f.message_type or f
    value: str | bytes = text.encode() if f.type == FieldDescriptor.TYPE_BYTES else text
    target, *rest = path.split(".")
    field = msg.DESCRIPTOR.fields_by_name[target]
    if rest:
        sub = getattr(msg, target).add() if field.is_repeated else getattr(msg, target)
        inner = sub.DESCRIPTOR.fields_by_name[rest[0]]
        if inner.is_repeated:
            getattr(sub, rest[0]).append(value)
        else:
            setattr(sub, rest[0], value)
    elif field.is_repeated:
        getattr(msg, target).append(value)
    else:
        setattr(msg, target, value)
    return msg


def _all_calls() -> list[tuple[str, Any, Any, str]]:
    from google.protobuf import symbol_database

    from seamfill.v1 import admin_pb2

    db = symbol_database.Default()
    calls = []
    for module in (coverage_pb2, leases_pb2, admin_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for m in service.methods:
                if m.client_streaming:
                    continue  # Session: its inner calls are the Leases methods checked here
                cls = db.GetSymbol(m.input_type.full_name)
                kind = "stream" if m.server_streaming else "unary"
                path = f"/{service.full_name}/{m.name}"
                for field, _ in _string_fields(m.input_type):
                    calls.append((path, cls, kind, field))
    return calls


def test_a_1mb_string_in_any_field_of_any_request_is_invalid_argument_and_creates_no_key(
    coordinator: RunningCoordinator, rdb: redis.Redis
) -> None:
    c = coordinator.client()
    c.ensure_range(Series(coordinator.dataset, "BTC"), TimeRange(0, 2 * HOUR))
    before = snapshot(rdb, coordinator.key_prefix)
    huge = "x" * (1 << 20)
    calls = _all_calls()
    assert len(calls) > 30  # every request type's string fields, not a sample
    with grpc.insecure_channel(coordinator.address) as ch:
        for path, cls, kind, field in calls:
            request = _request_with(cls, field, huge)
            make = ch.unary_stream if kind == "stream" else ch.unary_unary
            call = make(path, request_serializer=cls.SerializeToString, response_deserializer=bytes)
            with pytest.raises(grpc.RpcError) as info:
                result = call(request, timeout=30)
                if kind == "stream":
                    list(result)
            e = info.value
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (path, field, e.details())
            assert field.rsplit(".", 1)[-1] in e.details() and len(e.details()) < 300, (path, field)
            assert_unchanged(rdb, coordinator.key_prefix, before, (path, field))


@pytest.mark.parametrize("data", [b"\xff\xff\xff\xff", b"\x0a\xff\x01", b"\x08" * 3])
def test_undecodable_request_bytes_are_invalid_argument_not_unknown(
    tmp_path: Path, redis_url: str, key_prefix: str, data: bytes
) -> None:
    # A replica of its own: after a call like this, grpc.aio's server.stop(grace) may hang
    # past its grace, so the process is killed at the end rather than stopped in-process.
    cfg = write_config(tmp_path / "c.yaml", redis_url, key_prefix)
    proc = start_coordinator_process(cfg)
    try:
        with grpc.insecure_channel(proc.address) as ch:
            call = ch.unary_unary(
                "/seamfill.v1.Leases/Complete",
                request_serializer=lambda b: b,
                response_deserializer=bytes,
            )
            with pytest.raises(grpc.RpcError) as info:
                call(data, timeout=10)
    finally:
        proc.kill()
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
