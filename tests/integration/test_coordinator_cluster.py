"""The coordinator on a real Redis Cluster (3 masters + 3 replicas, ``make services-cluster``):
routing by slot, every script on every master, wake-ups across nodes, and fencing through a
failover in which the promoted replica lost the last writes.

Tests that fail a master over restore the cluster afterwards (the killed node restarts and
rejoins as a replica); every test here is in one xdist group so none sees another's failover.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from seamfill.coordinator.scripts import DATASET_SCRIPTS, PLAIN_SCRIPTS
from seamfill.core import errors
from seamfill.core.types import JobState, LeaseProgress, Series, TimeRange
from seamfill.sdk.client._coordinator import CoordinatorClient
from tests.coordinator_fixtures import (
    RunningCoordinator,
    start_coordinator_process,
    test_dataset_spec,
    wait_for,
    write_config,
)
from tests.integration.test_coordinator_replicas import _check, _run_fleet
from tests.redis_backends import (
    Shard,
    cluster_healthy,
    dataset_per_primary,
    kill,
    restore_services,
    shard_of,
    spread_names,
    wait_until,
)

HOUR = 3_600_000_000
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("redis-cluster")]
Factory = Callable[..., RunningCoordinator]


def _datasets(url: str, prefix: str, unique: str, per_primary: int = 1) -> dict[str, Any]:
    names = spread_names(url, prefix, f"cl{unique[-6:]}.", per_primary)
    return {n: test_dataset_spec(f"bars_{unique}_{i}") for i, n in enumerate(names)}


@pytest.fixture
def healthy_cluster(cluster_url: str) -> Iterator[str]:
    """The cluster, whole before the test and made whole again after it."""
    if not cluster_healthy(cluster_url):
        restore_services()
        wait_until(lambda: cluster_healthy(cluster_url), 60, "the cluster to be whole")
    yield cluster_url
    if not cluster_healthy(cluster_url):
        restore_services()
        wait_until(lambda: cluster_healthy(cluster_url), 60, "the cluster to be whole again")


def test_a_cluster_node_answering_moved_is_unavailable_not_internal(
    coordinator_factory: Factory, cluster_url: str, key_prefix: str, unique: str
) -> None:
    # A single-node URL at one master of the cluster: datasets on the other masters get MOVED.
    ds = _datasets(cluster_url, key_prefix, unique)
    owner = dataset_per_primary(cluster_url, key_prefix, list(ds))
    elsewhere = next(n for n, node in owner.items() if node != "127.0.0.1:7100")
    coord = coordinator_factory(ds, redis_url="redis://127.0.0.1:7100/0")
    c = coord.client()
    with pytest.raises(errors.CoordinatorUnavailable, match="MOVED"):
        c.ensure_range(Series(elsewhere, "X"), TimeRange(0, HOUR))


def test_every_script_runs_on_every_master(
    coordinator_factory: Factory,
    cluster_url: str,
    key_prefix: str,
    unique: str,
    questdb_url: str,
) -> None:
    ds = _datasets(cluster_url, key_prefix, unique)
    assert len(set(dataset_per_primary(cluster_url, key_prefix, list(ds)).values())) == 3
    coord = coordinator_factory(
        ds,
        redis_url=cluster_url,
        sources={"synthetic": {"rate_per_second": 100}},
        storage={"default": {"http": questdb_url}},
        lease_ttl_ms=1_000,
    )
    ran: list[tuple[str, str]] = []
    scripts = coord.server.store.scripts
    plain = scripts.plain

    async def spy(name: str, keys: Any, args: Any) -> Any:
        ran.append((name, keys[0]))
        return await plain(name, keys, args)

    scripts.plain = spy  # type: ignore[method-assign]
    c = coord.client()
    for name in ds:
        s = Series(name, "S")
        job = c.ensure_range(s, TimeRange(0, 4 * HOUR))  # ensure
        assert job is not None
        c.pause_job(job.job_id)  # job_control
        c.resume_job(job.job_id)
        a, b, d, e = c.acquire("w1", max=4).leases  # acquire, worker_seen
        c.heartbeat("w1", [LeaseProgress(e.lease_id, e.token)])  # heartbeat
        c.take_tokens("w1", "synthetic", 1)  # take_tokens
        c.complete("w1", a.lease_id, a.token, rows=60)  # complete
        c.release("w1", b.lease_id, b.token)  # release
        c.fail("w1", d.lease_id, d.token, "bad data", retryable=False)  # fail (dead letter)
        assert c.requeue_dead_letters([d.chunk.chunk_id]) == 1  # requeue_dead
        coord.run(coord.server.runtime.leasing.reap(name))  # reap
        c.release("w1", e.lease_id, e.token)
        c.reconcile(s, TimeRange(0, HOUR))  # reconcile
        assert c.get_coverage(s, TimeRange(0, HOUR)).gaps == (TimeRange(0, HOUR),)  # no rows
        c.cancel_job(job.job_id)  # nothing of this dataset is left for the next one's acquire
    for name in ds:
        base = f"{key_prefix}{{{name}}}:"
        seen = {n for n, k in ran if k.startswith(base)}
        assert set(DATASET_SCRIPTS) <= seen, (name, sorted(seen))
    assert set(PLAIN_SCRIPTS) <= {n for n, _ in ran}


def test_long_polls_wake_across_nodes_and_replicas(
    coordinator_factory: Factory, cluster_url: str, key_prefix: str, unique: str
) -> None:
    ds = _datasets(cluster_url, key_prefix, unique)
    a = coordinator_factory(ds, redis_url=cluster_url)
    b = coordinator_factory(ds, redis_url=cluster_url)
    wait_for(lambda: a.server.hub.connected.is_set() and b.server.hub.connected.is_set())
    ca, cb = a.client(), b.client()
    for name in ds:  # each dataset's wake comes from its own master
        got: list[Any] = []
        t = threading.Thread(
            target=lambda got=got: got.append(ca.acquire("w1", wait_ms=20_000))  # type: ignore[misc]
        )
        t.start()
        wait_for(lambda: any(w.worker_id == "w1" for w in cb.list_workers()))
        time.sleep(0.2)  # the long poll is asleep on replica a
        job = cb.ensure_range(Series(name, "W"), TimeRange(0, HOUR))
        t.join(15)
        assert not t.is_alive() and len(got[0].leases) == 1
        lease = got[0].leases[0]
        # WatchJob on replica b wakes when a completion on replica a finishes the job.
        assert job is not None
        states: list[JobState] = []

        def watch(job_id: str = job.job_id, states: list[JobState] = states) -> None:
            for j in cb.watch_job(job_id):
                states.append(j.state)
                if j.state is JobState.DONE:
                    return

        w = threading.Thread(target=watch)
        w.start()
        time.sleep(0.2)
        ca.complete("w1", lease.lease_id, lease.token, rows=60)
        w.join(15)
        assert not w.is_alive() and states[-1] is JobState.DONE


async def test_two_replicas_8_acquirers_500_chunks_each_granted_once_on_the_cluster(
    coordinator_factory: Factory,
    tmp_path: Path,
    cluster_url: str,
    key_prefix: str,
    unique: str,
) -> None:
    ds = _datasets(cluster_url, key_prefix, unique)
    a = coordinator_factory(ds, redis_url=cluster_url)
    b = start_coordinator_process(write_config(tmp_path / "c.yaml", cluster_url, key_prefix, ds))
    try:
        async with CoordinatorClient(a.address) as c:
            jobs, ids = [], set()
            names = sorted(ds)
            for k in range(5):  # 5 series x 100 chunks, over the 3 masters
                s = Series(names[k % 3], f"S{k}")
                job = await c.ensure_range(s, TimeRange(0, 100 * HOUR))
                assert job is not None and job.progress.chunks_total == 100
                jobs.append(job.job_id)
                ids |= {f"{s.dataset}/S{k}@{i * HOUR}" for i in range(100)}
            done = {"all": False}

            async def watch() -> None:
                while not done["all"]:
                    states = [(await c.get_job(j)).state for j in jobs]
                    done["all"] = all(st is JobState.DONE for st in states)
                    await asyncio.sleep(0.1)

            watcher = asyncio.create_task(watch())
            ledger = await _run_fleet([a.address, b.address], 8, lambda: done["all"])
            await watcher
            _check(ledger, ids)
            assert len(ids) == 500
    finally:
        assert b.stop() == 0


def _promoted(url: str, shard: Shard) -> Callable[[], bool]:
    def check() -> bool:
        try:
            import redis

            r = redis.Redis(port=shard.replica, socket_timeout=1)
            try:
                return str(r.info("replication")["role"]) == "master"
            finally:
                r.close()
        except (OSError, redis.RedisError):
            return False

    return check


def _lose_writes(shard: Shard, url: str, writes: Callable[[], Any]) -> Any:
    """Run ``writes`` on ``shard``'s master while its replica is cut off (frozen, its link
    dropped by the master, so nothing more reaches it), then kill -9 the master and let the
    replica take over without them; the dead node is restarted (as an orchestrator would) and
    rejoins as the new master's replica. Returns what ``writes`` returned."""
    import redis

    kill(shard.replica_pid, signal.SIGSTOP)
    try:
        master = redis.Redis(port=shard.primary, socket_timeout=2)
        master.execute_command("CLIENT", "KILL", "TYPE", "replica")
        master.close()
        out = writes()
    finally:
        kill(shard.primary_pid, signal.SIGKILL)
        kill(shard.replica_pid, signal.SIGCONT)
    wait_until(_promoted(url, shard), 30, f"replica :{shard.replica} to be promoted")
    restore_services()
    return out


def test_a_grant_the_promoted_replica_never_saw_cannot_complete(
    coordinator_factory: Factory, healthy_cluster: str, key_prefix: str, unique: str
) -> None:
    url = healthy_cluster
    ds = _datasets(url, key_prefix, unique)
    name = sorted(ds)[0]
    shard = shard_of(url, f"{key_prefix}{{{name}}}:x")
    coord = coordinator_factory(ds, redis_url=url, lease_ttl_ms=1_000)
    c = coord.client()
    s = Series(name, "F")
    job = c.ensure_range(s, TimeRange(0, HOUR))
    assert job is not None
    wait_for(lambda: c.get_job(job.job_id).progress.chunks_total == 1)
    time.sleep(0.3)  # the plan reached the replica

    def grant() -> list[Any]:
        try:
            return list(c.acquire("stale", max=1).leases)
        except errors.CoordinatorUnavailable:
            return []  # the grant did not reach a replica: it was never handed out

    stale = _lose_writes(shard, url, grant)
    # The fleet goes on on the promoted replica: the chunk is granted to a live worker.
    fresh = wait_for(lambda: _acquire_one(c, "live"), 30)
    for lease in stale:  # a lease handed out before the failover cannot complete after it
        with pytest.raises(errors.LeaseLost):
            c.complete("stale", lease.lease_id, lease.token, rows=60)
    c.complete("live", fresh.lease_id, fresh.token, rows=60)
    assert c.get_coverage(s, TimeRange(0, HOUR)).covered == (TimeRange(0, HOUR),)
    assert c.get_job(job.job_id).state is JobState.DONE


def test_a_completion_the_promoted_replica_never_saw_is_fetched_again(
    coordinator_factory: Factory, healthy_cluster: str, key_prefix: str, unique: str
) -> None:
    url = healthy_cluster
    ds = _datasets(url, key_prefix, unique)
    name = sorted(ds)[0]
    shard = shard_of(url, f"{key_prefix}{{{name}}}:x")
    coord = coordinator_factory(ds, redis_url=url, lease_ttl_ms=1_000)
    c = coord.client()
    s = Series(name, "G")
    job = c.ensure_range(s, TimeRange(0, HOUR))
    assert job is not None
    first = _acquire_one(c, "w1")
    assert first is not None
    time.sleep(0.3)  # the grant is on the replica (the acquire waited for it)

    def complete() -> TimeRange:
        c.complete("w1", first.lease_id, first.token, rows=60)  # acknowledged by the master
        covered = c.get_coverage(s, TimeRange(0, HOUR)).covered
        assert covered == (TimeRange(0, HOUR),)  # a reader saw it covered, on the old master
        return covered[0]

    _lose_writes(shard, url, complete)
    # The promoted replica still has the chunk leased: it expires and is granted again, so the
    # range is fetched a second time (the sink's DEDUP keeps the rows exact).
    again = wait_for(lambda: _acquire_one(c, "w2"), 30)
    assert again.lease_id == first.lease_id and again.token != first.token
    assert c.get_coverage(s, TimeRange(0, HOUR)).gaps == (TimeRange(0, HOUR),)
    c.complete("w2", again.lease_id, again.token, rows=60)
    assert c.get_job(job.job_id).state is JobState.DONE


def _acquire_one(c: Any, worker: str) -> Any:
    try:
        got = c.acquire(worker, max=1, wait_ms=200).leases
    except errors.CoordinatorUnavailable:
        return None
    return got[0] if got else None
