"""The coordinator end to end over gRPC: plan, lease, complete, coverage; fencing; bad input."""

from __future__ import annotations

import pytest

from seamfill.core import errors
from seamfill.core.types import JobState, Priority, Series, TimeRange
from seamfill.sdk.client._coordinator import Directive, Progress
from tests.coordinator_fixtures import RunningCoordinator

MIN = 60_000_000
HOUR = 60 * MIN
pytestmark = pytest.mark.integration


def test_ensure_acquire_complete_covers_the_range(coordinator: RunningCoordinator) -> None:
    c = coordinator.client()
    s = Series(coordinator.dataset, "BTC-USDT")
    r = TimeRange(0, 3 * HOUR)
    job = c.ensure_range(s, r, Priority.INTERACTIVE)
    assert job is not None and job.progress.chunks_total == 3 and job.state is JobState.RUNNING
    got = c.acquire("w1", ["synthetic"], max=10)
    assert sorted(x.chunk.range.start_us for x in got.leases) == [0, HOUR, 2 * HOUR]
    assert all(x.chunk.job_ids == (job.job_id,) for x in got.leases)
    for lease in got.leases:
        c.complete("w1", lease.lease_id, lease.token, rows=60)
    cov = c.get_coverage(s, r)
    assert cov.covered == (r,) and cov.gaps == () and cov.ratio == 1.0
    done = c.get_job(job.job_id)
    assert done.state is JobState.DONE and done.progress.rows_done == 180
    assert c.ensure_range(s, r) is None


def test_overlapping_requests_share_chunks(coordinator: RunningCoordinator) -> None:
    c = coordinator.client()
    s = Series(coordinator.dataset, "ETH")
    j1 = c.ensure_range(s, TimeRange(0, 2 * HOUR))
    j2 = c.ensure_range(s, TimeRange(HOUR, 3 * HOUR))
    assert j1 is not None and j2 is not None
    got = c.acquire("w1", max=10)
    assert len(got.leases) == 3
    shared = [x for x in got.leases if x.chunk.range.start_us == HOUR]
    assert shared[0].chunk.job_ids == tuple(sorted((j1.job_id, j2.job_id)))


def test_stale_token_is_refused_and_changes_nothing(coordinator: RunningCoordinator) -> None:
    c = coordinator.client()
    s = Series(coordinator.dataset, "SOL")
    c.ensure_range(s, TimeRange(0, HOUR))
    lease = c.acquire("w1").leases[0]
    c.release("w1", lease.lease_id, lease.token)
    again = c.acquire("w2").leases[0]
    assert again.lease_id == lease.lease_id and again.token > lease.token
    with pytest.raises(errors.LeaseLost):
        c.complete("w1", lease.lease_id, lease.token, rows=1)
    hb = c.heartbeat("w1", [Progress(lease.lease_id, lease.token, 0, 0)])
    assert hb.statuses[0].directive is Directive.LOST
    assert c.get_coverage(s, TimeRange(0, HOUR)).covered == ()
    c.complete("w2", again.lease_id, again.token, rows=0)
    assert c.get_coverage(s, TimeRange(0, HOUR)).covered == (TimeRange(0, HOUR),)


@pytest.mark.parametrize(
    ("rng", "err"),
    [
        (TimeRange(0, 1), errors.InvalidRange),  # unaligned
        (TimeRange(0, 10_000_000 * HOUR), errors.InvalidRange),  # too many chunks
        (TimeRange(HOUR, HOUR), errors.InvalidRange),  # empty
    ],
)
def test_bad_ranges_are_invalid_argument(
    coordinator: RunningCoordinator, rng: TimeRange, err: type[Exception]
) -> None:
    c = coordinator.client()
    with pytest.raises(err):
        c.ensure_range(Series(coordinator.dataset, "X"), rng)


def test_unknown_dataset_is_not_found(coordinator: RunningCoordinator) -> None:
    c = coordinator.client()
    with pytest.raises(errors.DatasetNotFound, match="nope"):
        c.get_coverage(Series("nope", "X"), TimeRange(0, HOUR))
