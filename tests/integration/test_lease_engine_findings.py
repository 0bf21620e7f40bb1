"""Regression tests for promises the lease engine broke under concurrency (one test per finding),
against a real coordinator on real Redis."""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
from pathlib import Path
from typing import Any

import pytest
import redis

from seamfill.coordinator.leasing import Leasing
from seamfill.coordinator.store import Store, now_us
from seamfill.core import errors
from seamfill.core.types import JobState, Series, TimeRange
from seamfill.sdk.client._coordinator import Directive, Progress, SyncCoordinatorClient
from tests.coordinator_fixtures import (
    TEST_DATASET,
    RunningCoordinator,
    build_config,
    start_coordinator_process,
    write_config,
)
from tests.coordinator_fixtures import test_dataset_spec as spec_of

MIN = 60_000_000
HOUR = 60 * MIN
pytestmark = pytest.mark.integration
Factory = Any


def test_widened_want_of_a_leased_chunk_keeps_every_request(
    coordinator: RunningCoordinator,
) -> None:
    """Finding 1: two requests widening one leased chunk both stay wanted; no job says done
    while part of its range is a gap."""
    c = coordinator.client()
    s = Series(coordinator.dataset, "W1")
    c.ensure_range(s, TimeRange(30 * MIN, 40 * MIN))
    lease = c.acquire("w1").leases[0]
    job1 = c.ensure_range(s, TimeRange(10 * MIN, 40 * MIN))
    job2 = c.ensure_range(s, TimeRange(30 * MIN, 50 * MIN))
    assert job1 is not None and job2 is not None
    c.complete("w1", lease.lease_id, lease.token, rows=10)
    again = c.acquire("w1").leases
    assert len(again) == 1, "the rest of both requests must be queued again"
    want = again[0].chunk.range
    assert want == TimeRange(10 * MIN, 30 * MIN), "the first gap of the cell comes first"
    j1 = c.get_job(job1.job_id)
    assert j1.state is JobState.RUNNING, f"job1 says {j1.state} with [10m,30m) a gap"
    c.complete("w1", again[0].lease_id, again[0].token, rows=20)
    assert c.get_job(job1.job_id).state is JobState.DONE
    assert c.get_job(job2.job_id).state is JobState.RUNNING, "[40m,50m) is still a gap"
    last = c.acquire("w1").leases[0]
    assert last.chunk.range == TimeRange(40 * MIN, 50 * MIN)
    c.complete("w1", last.lease_id, last.token, rows=10)
    assert c.get_coverage(s, TimeRange(10 * MIN, 50 * MIN)).gaps == ()
    assert c.get_job(job2.job_id).state is JobState.DONE


def _capped(factory: Factory, unique: str, **overrides: Any) -> RunningCoordinator:
    spec = {**spec_of(f"bars_{unique}"), "max_concurrency": 2}
    return factory({TEST_DATASET: spec}, **overrides)  # type: ignore[no-any-return]


def test_freed_slot_of_a_capped_dataset_wakes_a_long_poll(
    coordinator_factory: Factory, unique: str
) -> None:
    """Finding 2: at the cap, a long-polling Acquire gets a chunk as soon as a slot frees, and a
    poll that found the dataset at its cap does not hide it from later polls."""
    coord = _capped(coordinator_factory, unique)
    c = coord.client()
    s = Series(coord.dataset, "CAP")
    c.ensure_range(s, TimeRange(0, 4 * HOUR))
    held = c.acquire("a", max=10).leases
    assert len(held) == 2
    assert c.acquire("b", wait_ms=200).leases == ()  # at the cap: nothing, legitimately
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        other = coord.client()
        waiting = pool.submit(other.acquire, "b", wait_ms=8_000)
        c.complete("a", held[0].lease_id, held[0].token, rows=60)
        got = waiting.result(timeout=30).leases
    assert len(got) == 1, "a freed slot must wake the long-polling worker"


def test_retry_coming_due_reaches_a_long_poll(coordinator_factory: Factory, unique: str) -> None:
    """Finding 2 (retries): a retry coming due reaches a long-poller within its wait."""
    coord = coordinator_factory(lease_ttl_ms=30_000, backoff_base_ms=200, backoff_max_ms=400)
    c = coord.client()
    s = Series(coord.dataset, "RETRY")
    c.ensure_range(s, TimeRange(0, HOUR))
    lease = c.acquire("a").leases[0]
    c.fail("a", lease.lease_id, lease.token, "upstream hiccup", retryable=True)
    got = c.acquire("a", wait_ms=3_000).leases
    assert len(got) == 1, "the retry came due during the long poll but was never offered"


def test_token_bucket_holds_across_replicas_with_skewed_clocks(
    redis_url: str, key_prefix: str
) -> None:
    """Finding 3: two replicas 2 s apart share one bucket; the grants never exceed
    rate x elapsed + burst (elapsed by Redis's own clock)."""
    cfg = build_config(
        redis_url,
        key_prefix,
        {TEST_DATASET: spec_of()},
        sources={"synthetic": {"rate_per_second": 5, "burst": 1}},
    )
    r = redis.Redis.from_url(redis_url)

    def redis_now() -> float:
        sec, usec = r.time()
        return sec + usec / 1e6

    async def run() -> tuple[int, float]:
        stores = [Store(cfg, clock=now_us), Store(cfg, clock=lambda: now_us() + 2_000_000)]
        leasings = [Leasing(st) for st in stores]
        t0 = redis_now()
        granted = 0
        try:
            for i in range(80):
                ok, _ = await leasings[i % 2].take_tokens("synthetic", 1)
                granted += ok
                await asyncio.sleep(0.01)
        finally:
            for st in stores:
                await st.close()
        return granted, redis_now() - t0

    granted, elapsed = asyncio.run(run())
    r.close()
    bound = 5 * elapsed + 1
    assert granted <= bound, f"{granted} tokens granted in {elapsed:.2f}s; at most {bound:.1f}"


def test_complete_with_absurd_rows_is_refused_and_changes_nothing(
    coordinator: RunningCoordinator,
) -> None:
    """Finding 5: rows beyond the chunk's bars is INVALID_ARGUMENT, before any write: the
    lease still holds and completes normally afterwards."""
    c = coordinator.client()
    s = Series(coordinator.dataset, "ROWS")
    job = c.ensure_range(s, TimeRange(0, 3 * HOUR))
    assert job is not None
    leases = c.acquire("w", max=3).leases
    for bad in (10**18, 2**63 - 1, 61):
        with pytest.raises(errors.InvalidArgument, match="rows"):
            c.complete("w", leases[0].lease_id, leases[0].token, rows=bad)
    assert c.get_coverage(s, TimeRange(0, HOUR)).covered == ()
    for lease in leases:
        c.complete("w", lease.lease_id, lease.token, rows=60)
    done = c.get_job(job.job_id)
    assert done.state is JobState.DONE and done.progress.rows_done == 180


def test_a_worker_cannot_act_on_another_workers_lease(coordinator: RunningCoordinator) -> None:
    """Issue 16 item 1: B, with its own valid lease, cannot complete, fail, release or heartbeat
    A's lease even knowing its token; A's lease is intact; a forged heartbeat from an unknown
    worker id creates no worker record."""
    c = coordinator.client()
    s = Series(coordinator.dataset, "OWN")
    c.ensure_range(s, TimeRange(0, 2 * HOUR))
    a = c.acquire("worker-a").leases[0]
    b = c.acquire("worker-b").leases[0]
    assert a.lease_id != b.lease_id
    refused = (errors.FailedPrecondition, errors.PermissionDenied)
    with pytest.raises(refused):
        c.complete("worker-b", a.lease_id, a.token, rows=0)
    with pytest.raises(refused):
        c.fail("worker-b", a.lease_id, a.token, "x", retryable=False)
    with pytest.raises(refused):
        c.release("worker-b", a.lease_id, a.token)
    hb = c.heartbeat("worker-b", [Progress(a.lease_id, a.token, 0, 0)])
    assert hb.statuses[0].directive is Directive.LOST
    assert c.get_coverage(s, TimeRange(0, HOUR)).covered == ()
    assert (
        c.heartbeat("worker-a", [Progress(a.lease_id, a.token, 0, 0)]).statuses[0].directive
        is Directive.CONTINUE
    )
    c.complete("worker-a", a.lease_id, a.token, rows=60)
    assert c.get_coverage(s, TimeRange(0, HOUR)).covered == (TimeRange(0, HOUR),)
    c.heartbeat("ghost-worker", [Progress(b.lease_id, b.token, 0, 0)])
    r = redis.Redis.from_url(coordinator.redis_url, decode_responses=True)
    try:
        assert not [k for k in r.scan_iter(match=coordinator.key_prefix + "*ghost-worker*")]
    finally:
        r.close()


def test_fencing_tokens_are_not_consecutive(coordinator: RunningCoordinator) -> None:
    """Issue 16 item 1: a token cannot be guessed from another one (a random part)."""
    c = coordinator.client()
    c.ensure_range(Series(coordinator.dataset, "TOK"), TimeRange(0, 8 * HOUR))
    tokens = sorted(x.token for x in c.acquire("w", max=8).leases)
    gaps = {b - a for a, b in itertools.pairwise(tokens)}
    assert gaps != {1} and len(gaps) > 1, f"tokens {tokens} count up by one"


def test_token_bucket_holds_across_a_replica_under_faketime(
    coordinator_factory: Factory, tmp_path: Path, redis_url: str, key_prefix: str, unique: str
) -> None:
    """Finding 3 with real processes: a second replica whose clock is 2 s behind (libfaketime);
    workers take tokens through both; grants stay within rate x elapsed + burst."""
    lib = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
    if not lib.exists():
        pytest.fail("libfaketime is needed: apt-get install faketime")
    sources = {"synthetic": {"rate_per_second": 5, "burst": 1}}
    spec = {TEST_DATASET: spec_of(f"bars_{unique}")}
    a = coordinator_factory(spec, sources=sources)
    cfg = write_config(tmp_path / "c.yaml", redis_url, key_prefix, spec, sources=sources)
    b = start_coordinator_process(cfg, env={"LD_PRELOAD": str(lib), "FAKETIME": "-2s"})
    r = redis.Redis.from_url(redis_url)

    def redis_now() -> float:
        sec, usec = r.time()
        return sec + usec / 1e6

    try:
        clients = [a.client(), SyncCoordinatorClient(b.address)]
        t0 = redis_now()
        granted = 0
        for i in range(80):
            ok, _ = clients[i % 2].take_tokens("w", "synthetic")
            granted += ok
        elapsed = redis_now() - t0
        clients[1].close()
    finally:
        b.stop()
        r.close()
    bound = 5 * elapsed + 1
    assert granted <= bound, f"{granted} tokens granted in {elapsed:.2f}s; at most {bound:.1f}"


def test_ensure_range_retried_with_its_idempotency_key_makes_one_job(
    coordinator: RunningCoordinator,
) -> None:
    """Finding 6: a retry carrying the same idempotency key answers with the same job; another
    key (or none) plans a new one."""
    import grpc

    from seamfill.v1 import common_pb2, coverage_pb2, coverage_pb2_grpc

    with grpc.insecure_channel(coordinator.address) as ch:
        stub = coverage_pb2_grpc.CoverageStub(ch)

        def ensure(key: str) -> str:
            req = coverage_pb2.EnsureRangeRequest(
                series=common_pb2.Series(dataset=coordinator.dataset, symbol="IDEM"),
                range=common_pb2.TimeRange(start_us=0, end_us=2 * HOUR),
                idempotency_key=key,
            )
            return str(stub.EnsureRange(req).job_id)

        first = ensure("req-1")
        assert first and ensure("req-1") == first
        assert ensure("req-2") != first
        assert ensure("") != first


def test_ensure_range_is_rate_limited_per_caller(coordinator_factory: Factory) -> None:
    """Finding 4: a caller planning more than its budget of chunks is told to back off
    (UNAVAILABLE, naming it); another caller is not held up by it."""
    coord = coordinator_factory(max_job_chunks=10)
    c = coord.client()
    s = Series(coord.dataset, "FLOOD")
    for k in range(2):
        c.ensure_range(s, TimeRange(10 * k * HOUR, 10 * (k + 1) * HOUR), requested_by="bulk")
    with pytest.raises(errors.CoordinatorUnavailable, match="requested_by 'bulk'"):
        c.ensure_range(s, TimeRange(20 * HOUR, 30 * HOUR), requested_by="bulk")
    assert c.ensure_range(s, TimeRange(20 * HOUR, 30 * HOUR), requested_by="strategy")


def test_two_gaps_in_one_cell_are_fetched_apart_not_as_their_hull(
    coordinator: RunningCoordinator,
) -> None:
    """Finding 6: [0, 10m) and [50m, 60m) missing in one cell: no lease covers [10m, 50m)."""
    c = coordinator.client()
    s = Series(coordinator.dataset, "HULL")
    c.ensure_range(s, TimeRange(10 * MIN, 50 * MIN))
    lease = c.acquire("w").leases[0]
    c.complete("w", lease.lease_id, lease.token, rows=40)
    job = c.ensure_range(s, TimeRange(0, HOUR))
    assert job is not None
    cov = c.get_coverage(s, TimeRange(0, HOUR))
    assert cov.queued == (TimeRange(0, 10 * MIN), TimeRange(50 * MIN, HOUR))
    fetched = []
    for _ in range(2):
        got = c.acquire("w").leases[0]
        fetched.append(got.chunk.range)
        c.complete("w", got.lease_id, got.token, rows=10)
    assert fetched == [TimeRange(0, 10 * MIN), TimeRange(50 * MIN, HOUR)]
    assert c.get_job(job.job_id).state is JobState.DONE
    assert c.get_coverage(s, TimeRange(0, HOUR)).gaps == ()
