"""Jobs, leases and retries through their whole life, against a real coordinator and Redis."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from seamfill.core import errors
from seamfill.core.types import ChunkState, JobState, Priority, Series, TimeRange
from seamfill.sdk.client._coordinator import Directive, Progress, SyncCoordinatorClient
from tests.coordinator_fixtures import TEST_DATASET, RunningCoordinator, test_dataset_spec, wait_for

MIN = 60_000_000
HOUR = 60 * MIN
pytestmark = pytest.mark.integration
Factory = Callable[..., RunningCoordinator]


def test_pause_resume_cancel_and_heartbeat_directives(coordinator: RunningCoordinator) -> None:
    c = coordinator.client()
    s = Series(coordinator.dataset, "BTC")
    job = c.ensure_range(s, TimeRange(0, 3 * HOUR))
    assert job is not None
    held = c.acquire("w1").leases[0]
    c.pause_job(job.job_id)
    hb = c.heartbeat("w1", [Progress(held.lease_id, held.token, held.chunk.range.start_us, 5)])
    assert hb.statuses[0].directive is Directive.STOP_PAUSED
    assert c.acquire("w1", max=5).leases == ()  # the paused job's chunks are parked
    with pytest.raises(errors.JobNotRunning):
        c.pause_job(job.job_id)
    c.resume_job(job.job_id)
    assert len(c.acquire("w1", max=5).leases) == 2
    hb = c.heartbeat("w1", [Progress(held.lease_id, held.token, 0, 0)])
    assert hb.statuses[0].directive is Directive.CONTINUE
    assert c.cancel_job(job.job_id).state is JobState.CANCELLED
    hb = c.heartbeat("w1", [Progress(held.lease_id, held.token, 0, 0)])
    assert hb.statuses[0].directive is Directive.STOP_CANCELLED
    c.release("w1", held.lease_id, held.token)
    assert c.acquire("w1", max=5).leases == ()
    with pytest.raises(errors.JobNotRunning):
        c.resume_job(job.job_id)


def test_retry_backoff_then_dead_letter_then_requeue(coordinator_factory: Factory) -> None:
    co = coordinator_factory(max_attempts=2, backoff_base_ms=1, backoff_max_ms=5)
    c = co.client()
    s = Series(co.dataset, "ETH")
    job = c.ensure_range(s, TimeRange(0, HOUR))
    assert job is not None
    first = c.acquire("w1").leases[0]
    res = c.fail("w1", first.lease_id, first.token, "timeout", retryable=True)
    assert res.attempts == 1 and not res.dead_lettered and res.retry_at_us > 0
    second = wait_for(lambda: c.acquire("w1").leases)[0]
    assert second.chunk.attempts == 2 and second.chunk.last_error == "timeout"
    res = c.fail("w1", second.lease_id, second.token, "still failing", retryable=True)
    assert res.dead_lettered
    dead = c.list_dead_letters()
    assert [d.chunk_id for d in dead] == [first.lease_id]
    assert dead[0].state is ChunkState.DEAD and dead[0].last_error == "still failing"
    failed = c.get_job(job.job_id)
    assert failed.state is JobState.FAILED and failed.progress.chunks_failed == 1
    assert c.requeue_dead_letters([first.lease_id]) == 1
    assert c.get_job(job.job_id).state is JobState.RUNNING
    third = c.acquire("w1").leases[0]
    assert third.chunk.attempts == 1
    c.complete("w1", third.lease_id, third.token, 60)
    assert c.get_job(job.job_id).state is JobState.DONE


def test_terminal_failure_dead_letters_at_once(coordinator: RunningCoordinator) -> None:
    c = coordinator.client()
    c.ensure_range(Series(coordinator.dataset, "X"), TimeRange(0, HOUR))
    lease = c.acquire("w1").leases[0]
    assert c.fail("w1", lease.lease_id, lease.token, "no such symbol", False).dead_lettered


def test_expired_lease_goes_back_with_a_new_token(coordinator_factory: Factory) -> None:
    co = coordinator_factory(lease_ttl_ms=150)
    c = co.client()
    c.ensure_range(Series(co.dataset, "ADA"), TimeRange(0, HOUR))
    lost = c.acquire("w1").leases[0]
    again = c.acquire("w2", wait_ms=5_000).leases[0]  # woken when the reaper requeues it
    assert again.lease_id == lost.lease_id and again.token > lost.token
    with pytest.raises(errors.LeaseLost):
        c.complete("w1", lost.lease_id, lost.token, 1)
    assert c.get_stats().datasets[0].lease_expiries >= 1


def test_acquire_long_polls_until_work_arrives(coordinator: RunningCoordinator) -> None:
    c, c2 = coordinator.client(), coordinator.client()
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(c.acquire("w1", wait_ms=20_000)))
    t.start()
    wait_for(lambda: any(w.worker_id == "w1" for w in c2.list_workers()))
    c2.ensure_range(Series(coordinator.dataset, "DOT"), TimeRange(0, HOUR))
    t.join(15)
    assert not t.is_alive() and len(got[0].leases) == 1  # type: ignore[attr-defined]


def test_interactive_jobs_go_first_and_jobs_share_fairly(coordinator: RunningCoordinator) -> None:
    c = coordinator.client()
    ds = coordinator.dataset
    c.ensure_range(Series(ds, "A"), TimeRange(0, 4 * HOUR), Priority.BULK)
    c.ensure_range(Series(ds, "B"), TimeRange(0, 4 * HOUR), Priority.NORMAL)
    c.ensure_range(Series(ds, "C"), TimeRange(0, 4 * HOUR), Priority.NORMAL)
    c.ensure_range(Series(ds, "D"), TimeRange(0, HOUR), Priority.INTERACTIVE)
    order = [x.chunk.series.symbol for x in c.acquire("w", max=13).leases]
    assert order[0] == "D"
    assert sorted(order[1:3]) == ["B", "C"] and sorted(order[3:5]) == ["B", "C"]
    assert order[9:] == ["A"] * 4


def test_max_concurrency_caps_leases(coordinator_factory: Factory, unique: str) -> None:
    spec = {**test_dataset_spec(f"bars_{unique}"), "max_concurrency": 2}
    co = coordinator_factory(datasets={TEST_DATASET: spec})
    c = co.client()
    c.ensure_range(Series(co.dataset, "Z"), TimeRange(0, 5 * HOUR))
    held = c.acquire("w1", max=5).leases
    assert len(held) == 2 and c.acquire("w2", max=5).leases == ()
    c.complete("w1", held[0].lease_id, held[0].token, 1)
    assert len(c.acquire("w2", max=5).leases) == 1


def test_watch_job_streams_until_done(coordinator: RunningCoordinator) -> None:
    c, worker = coordinator.client(), coordinator.client()
    job = c.ensure_range(Series(coordinator.dataset, "W"), TimeRange(0, 2 * HOUR))
    assert job is not None

    def work() -> None:
        for lease in worker.acquire("w", max=2).leases:
            worker.complete("w", lease.lease_id, lease.token, 60)

    t = threading.Thread(target=work)
    t.start()
    seen = list(c.watch_job(job.job_id))
    t.join()
    assert seen[-1].state is JobState.DONE and seen[-1].progress.chunks_done == 2
    assert seen[-1].progress.rows_done == 120


def test_workers_drain(coordinator: RunningCoordinator) -> None:
    c = coordinator.client()
    c.ensure_range(Series(coordinator.dataset, "Q"), TimeRange(0, HOUR))
    lease = c.acquire("w9", ["synthetic"]).leases[0]
    c.complete("w9", lease.lease_id, lease.token, 42)
    (w,) = wait_for(lambda: [w for w in c.list_workers() if w.rows == 42])
    assert w.worker_id == "w9" and w.sources == ("synthetic",)
    assert c.drain_worker("w9").draining
    assert c.acquire("w9").drain
    with pytest.raises(errors.NotFound):
        c.drain_worker("ghost")


def test_take_tokens_shares_one_bucket(coordinator_factory: Factory) -> None:
    co = coordinator_factory(sources={"synthetic": {"rate_per_second": 1, "burst": 3}})
    a, b = co.client(), co.client()
    grants = [
        a.take_tokens("w1", "synthetic", 1)[0],
        b.take_tokens("w2", "synthetic", 1)[0],
        a.take_tokens("w1", "synthetic", 1)[0],
    ]
    assert grants == [True, True, True]
    granted, wait_ms = b.take_tokens("w2", "synthetic", 1)
    assert not granted and 0 < wait_ms <= 1000
    assert a.take_tokens("w1", "unlimited-source", 100) == (True, 0)
    with pytest.raises(errors.InvalidArgument, match="burst"):
        a.take_tokens("w1", "synthetic", 4)


def test_datasets_and_stats(coordinator: RunningCoordinator) -> None:
    c = coordinator.client()
    (ds,) = c.list_datasets()
    assert ds.name == coordinator.dataset and ds.chunk_bars == 60
    c.ensure_range(Series(ds.name, "S"), TimeRange(0, 2 * HOUR))
    c.acquire("w")
    st = c.get_stats()
    assert (st.datasets[0].queued, st.datasets[0].leased, st.jobs_running) == (1, 1, 1)
    assert [j.series.symbol for j in c.list_jobs([JobState.RUNNING])] == ["S"]
    assert len(c.list_leases()) == 1


def test_a_wider_request_on_a_leased_chunk_requeues_the_rest(
    coordinator: RunningCoordinator,
) -> None:
    c = coordinator.client()
    s = Series(coordinator.dataset, "WIDE")
    narrow = c.ensure_range(s, TimeRange(0, 30 * MIN))
    held = c.acquire("w1").leases[0]
    assert held.chunk.range == TimeRange(0, 30 * MIN)
    wide = c.ensure_range(s, TimeRange(0, HOUR))
    assert narrow is not None and wide is not None
    assert c.complete("w1", held.lease_id, held.token, 30) == [narrow.job_id]
    rest = c.acquire("w1").leases[0]
    assert rest.lease_id == held.lease_id and rest.chunk.range == TimeRange(30 * MIN, HOUR)
    assert c.complete("w1", rest.lease_id, rest.token, 30) == [wide.job_id]
    assert c.get_coverage(s, TimeRange(0, HOUR)).covered == (TimeRange(0, HOUR),)


def test_ensure_range_waits_for_the_job(coordinator: RunningCoordinator) -> None:
    c, worker = coordinator.client(), coordinator.client()
    s = Series(coordinator.dataset, "WAIT")

    def work() -> None:
        lease = worker.acquire("w", wait_ms=10_000).leases[0]
        worker.complete("w", lease.lease_id, lease.token, 60)

    t = threading.Thread(target=work)
    t.start()
    job, cov = c.ensure_range_with_coverage(s, TimeRange(0, HOUR), wait_ms=10_000)
    t.join()
    assert job is not None and job.state is JobState.DONE
    assert cov.covered == (TimeRange(0, HOUR),)


def test_stopping_replica_answers_long_polls_at_once(coordinator_factory: Factory) -> None:
    co = coordinator_factory()
    got: list[object] = []
    with SyncCoordinatorClient(co.address) as c:
        t = threading.Thread(target=lambda: got.append(c.acquire("w1", wait_ms=60_000)))
        t.start()
        wait_for(lambda: any(w.worker_id == "w1" for w in co.client().list_workers()))
        co.stop()
        t.join(30)
    assert not t.is_alive()
    assert got and got[0].leases == ()  # type: ignore[attr-defined]
