"""Published fingerprints: the first per (range, as-of) is kept; a burst cannot evict others."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from seamfill.v1 import common_pb2, coverage_pb2, coverage_pb2_grpc
from tests.coordinator_fixtures import RunningCoordinator

MIN = 60_000_000
pytestmark = pytest.mark.integration
KEPT = 1000  # the coordinator's cap on fingerprints per series


@pytest.fixture
def stub(coordinator: RunningCoordinator) -> Iterator[coverage_pb2_grpc.CoverageStub]:
    with grpc.insecure_channel(coordinator.address) as ch:
        yield coverage_pb2_grpc.CoverageStub(ch)


def _fp(dataset: str, start: int, as_of: int, sha: str) -> coverage_pb2.Fingerprint:
    return coverage_pb2.Fingerprint(
        series=common_pb2.Series(dataset=dataset, symbol="BTC"),
        range=common_pb2.TimeRange(start_us=start, end_us=start + MIN),
        sha256=sha,
        as_of_us=as_of,
        rows=1,
    )


def _publish(stub: coverage_pb2_grpc.CoverageStub, fp: coverage_pb2.Fingerprint) -> str:
    out = stub.PublishFingerprint(coverage_pb2.PublishFingerprintRequest(fingerprint=fp))
    return str(out.fingerprint.sha256)


def _all(stub: coverage_pb2_grpc.CoverageStub, dataset: str) -> list[coverage_pb2.Fingerprint]:
    series = common_pb2.Series(dataset=dataset, symbol="BTC")
    req = coverage_pb2.GetFingerprintsRequest(series=series, limit=10 * KEPT)
    return list(stub.GetFingerprints(req).fingerprints)


def test_the_first_fingerprint_per_range_and_as_of_is_kept(
    coordinator: RunningCoordinator, stub: coverage_pb2_grpc.CoverageStub
) -> None:
    ds = coordinator.dataset
    assert _publish(stub, _fp(ds, 0, 7, "a" * 64)) == "a" * 64
    # A second publication of the same (range, as-of) answers with the one kept.
    assert _publish(stub, _fp(ds, 0, 7, "b" * 64)) == "a" * 64
    assert _publish(stub, _fp(ds, 0, 8, "c" * 64)) == "c" * 64  # another as-of is its own
    got = sorted((f.as_of_us, f.sha256) for f in _all(stub, ds))
    assert got == [(7, "a" * 64), (8, "c" * 64)]


def test_a_burst_of_publications_cannot_evict_the_fingerprints_kept(
    coordinator: RunningCoordinator, stub: coverage_pb2_grpc.CoverageStub
) -> None:
    ds = coordinator.dataset
    _publish(stub, _fp(ds, 0, 1, "a" * 64))
    refused = 0
    for i in range(1, KEPT + 50):  # a reader's burst of distinct ranges, then more
        try:
            _publish(stub, _fp(ds, i * MIN, 1, "d" * 64))
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.FAILED_PRECONDITION, e.details()
            assert "fingerprint" in e.details() and len(e.details()) < 300
            refused += 1
    for _ in range(50):  # and of the first one's own key
        _publish(stub, _fp(ds, 0, 1, "e" * 64))
    kept = _all(stub, ds)
    assert len(kept) == KEPT and refused == 50
    first = [f.sha256 for f in kept if f.range.start_us == 0]
    assert first == ["a" * 64]
