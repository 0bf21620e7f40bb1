"""The worker fleet end to end on a real Redis Cluster and on Redis with Sentinel (``make
services-cluster``): datasets spread over the masters, and a master killed -9 mid-backfill.

Recovery is measured from the kill to the first chunk of the failed-over shard completed again;
the killed node is restarted at once (as an orchestrator would) and rejoins as a replica. The
bound the tests wait for is ``RECOVERY_BOUND_S``; the measured time is printed.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis

from seamfill.coordinator.redis_conn import parse_url
from seamfill.v1 import admin_pb2, admin_pb2_grpc, common_pb2
from tests.e2e.worker_support import DAY, T0, Fleet, Proc, sql, wait_for
from tests.redis_backends import (
    cluster_healthy,
    dataset_per_primary,
    dbsize_per_primary,
    delete_prefix,
    keys_per_primary,
    kill,
    restore_services,
    shard_of,
    spread_names,
    sync_client,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("redis-cluster")]
# Failure detection (cluster-node-timeout 1.5 s, Sentinel down-after 1 s) + election + the
# restarted node's resync + the workers' reconnect backoff, with room for a loaded machine.
RECOVERY_BOUND_S = 30.0


@pytest.fixture
def tables(unique: str, questdb_url: str) -> Iterator[list[str]]:
    names = [f"clf_{unique}_{i}" for i in range(6)]
    yield names
    for n in names:
        sql(questdb_url, f'DROP TABLE IF EXISTS "{n}"')


def _spec(table: str) -> dict[str, Any]:
    return {"table": table, "source": "scripted", "interval": "1m", "chunk_bars": 1440}


def _whole(url: str) -> None:
    if not cluster_healthy(url):
        restore_services()
        wait_until(lambda: cluster_healthy(url), 60, "the cluster to be whole")


def _check_rows(questdb_url: str, table: str, symbols: list[str], per_symbol: int) -> None:
    assert sql(questdb_url, f'SELECT count() FROM "{table}"') == [[per_symbol * len(symbols)]]
    distinct = sql(questdb_url, f'SELECT count() FROM (SELECT DISTINCT ts, symbol FROM "{table}")')
    assert distinct == [[per_symbol * len(symbols)]], "duplicate (ts, symbol) rows"


def _chunks_done(fleet: Fleet, dataset: str) -> int:
    try:
        stub = admin_pb2_grpc.AdminStub(fleet.channel)
        st = stub.GetStats(admin_pb2.GetStatsRequest(), timeout=5)
    except grpc.RpcError:  # the coordinator may be failing over: not done yet
        return -1
    return next(int(d.chunks_done) for d in st.datasets if d.dataset == dataset)


def test_six_datasets_by_twenty_symbols_backfill_on_the_cluster(
    tmp_path: Path, cluster_url: str, questdb_url: str, key_prefix: str, tables: list[str]
) -> None:
    _whole(cluster_url)
    names = spread_names(cluster_url, key_prefix, "cl6.", 2)
    owners = dataset_per_primary(cluster_url, key_prefix, names)
    assert len(set(owners.values())) == 3
    fleet = Fleet(tmp_path, cluster_url, questdb_url, key_prefix)
    try:
        fleet.start_coordinator({n: _spec(t) for n, t in zip(names, tables, strict=True)})
        for w in ("wA", "wB"):
            fleet.start_worker(w, "--concurrency", "3")
        symbols = [f"S{i:02d}" for i in range(20)]
        end = T0 + 2 * DAY
        jobs = [fleet.ensure(n, s, T0, end) for n in names for s in symbols]
        wait_for(
            lambda: all(fleet.job_state(j) == common_pb2.JOB_STATE_DONE for j in jobs),
            240,
            "every job to finish",
        )
        per_node = keys_per_primary(cluster_url, key_prefix)
        print(f"keys under {key_prefix} per master: {per_node}")
        print(f"DBSIZE per master: {dbsize_per_primary(cluster_url)}")
        assert len(per_node) == 3 and all(n > 0 for n in per_node.values()), per_node
        for n in names:
            assert all(fleet.gaps(n, s, T0, end) == [] for s in symbols)
        for t in tables:
            _check_rows(questdb_url, t, symbols, 2 * 1440)
    finally:
        fleet.close()


def _held(worker: Proc) -> set[tuple[str, int]]:
    granted = {(e["lease"], int(e["token"])) for e in worker.events("seamless.backfill.attempt")}
    done = {(e["lease"], int(e["token"])) for e in worker.events("seamless.backfill.succeeded")}
    return granted - done


def _failover_run(
    fleet: Fleet,
    names: list[str],
    tables: list[str],
    questdb_url: str,
    kill_master: Any,
) -> None:
    """Backfill ``names``; SIGSTOP a worker holding a lease of ``names[0]``, kill -9 the master
    holding it (``kill_master()``), let the fleet recover, then wake the stopped worker."""
    fleet.start_coordinator(
        {n: _spec(t) for n, t in zip(names, tables, strict=True)}, lease_ttl_ms=3000
    )
    slow = {"SEAMFILL_TEST_FETCH_DELAY": "0.05"}
    workers = [fleet.start_worker(w, "--concurrency", "2", env=slow) for w in ("wA", "wB")]
    frozen = fleet.start_worker("wS", "--concurrency", "1", env=slow)
    symbols = [f"SLOW{i}" for i in range(8)]
    end = T0 + 6 * DAY
    jobs = [fleet.ensure(n, s, T0, end) for n in names for s in symbols]
    target = names[0]

    def holds_target() -> set[tuple[str, int]]:
        return {h for h in _held(frozen) if h[0].startswith(f"{target}/")}

    wait_for(holds_target, 60, "wS to hold a lease of the dataset on the doomed master")
    frozen.signal(signal.SIGSTOP)
    stale = _held(frozen)
    before = _chunks_done(fleet, target)
    t_kill = time.monotonic()
    # kill -9, then, like an orchestrator, restart the dead node once it is replaced.
    orchestrator = threading.Thread(target=kill_master, daemon=True)
    orchestrator.start()
    wait_until(
        lambda: _chunks_done(fleet, target) > before, RECOVERY_BOUND_S, "the fleet to recover"
    )
    recovered = time.monotonic() - t_kill
    print(f"recovered {recovered:.2f} s after kill -9 of the master (bound {RECOVERY_BOUND_S} s)")
    orchestrator.join(120)
    # The stale worker wakes after its leases expired and were granted again elsewhere.
    time.sleep(max(0.0, 4.0 - (time.monotonic() - t_kill)))
    frozen.signal(signal.SIGCONT)
    wait_for(
        lambda: all(fleet.job_state(j) == common_pb2.JOB_STATE_DONE for j in jobs),
        240,
        "every job to finish",
    )
    assert all(w.popen.poll() is None for w in workers)
    lost = {(e["lease"], int(e["token"])) for e in frozen.events("seamless.lease.lost")}
    wait_for(lambda: stale <= lost or None, 30, "wS to be told its stale leases are lost")
    late = {(e["lease"], int(e["token"])) for e in frozen.events("seamless.backfill.succeeded")}
    assert not stale & late, "a stale lease completed after the failover"
    for n in names:
        assert all(fleet.gaps(n, s, T0, end) == [] for s in symbols)
    for t in tables:
        _check_rows(questdb_url, t, symbols, 6 * 1440)


def test_cluster_master_killed_mid_backfill_fleet_recovers_and_stale_worker_is_fenced(
    tmp_path: Path, cluster_url: str, questdb_url: str, key_prefix: str, tables: list[str]
) -> None:
    _whole(cluster_url)
    names = spread_names(cluster_url, key_prefix, "clk.", 1)
    shard = shard_of(cluster_url, f"{key_prefix}{{{names[0]}}}:x")
    fleet = Fleet(tmp_path, cluster_url, questdb_url, key_prefix)

    def kill_master() -> None:
        kill(shard.primary_pid)
        wait_until(lambda: _role(shard.replica) == "master", 30, "the replica to be promoted")
        restore_services()

    try:
        _failover_run(fleet, names, tables[:3], questdb_url, kill_master)
    finally:
        fleet.close()
        _whole(cluster_url)


def _role(port: int) -> str:
    try:
        r = redis.Redis(port=port, socket_timeout=1)
        try:
            return str(r.info("replication")["role"])
        finally:
            r.close()
    except (OSError, redis.RedisError):
        return "down"


def test_sentinel_master_killed_mid_backfill_fleet_recovers_and_stale_worker_is_fenced(
    tmp_path: Path, sentinel_url: str, questdb_url: str, unique: str, tables: list[str]
) -> None:
    prefix = f"sftest:{unique}:"
    master = sync_client(sentinel_url, socket_timeout=2)
    info = master.info("server")
    port, pid = int(info["tcp_port"]), int(info["process_id"])
    master.close()
    fleet = Fleet(tmp_path, sentinel_url, questdb_url, prefix)

    def kill_master() -> None:
        kill(pid)
        wait_until(lambda: _sentinel_master(sentinel_url) != port, 30, "Sentinel to fail over")
        restore_services()

    try:
        _failover_run(fleet, ["sen.a", "sen.b"], tables[:2], questdb_url, kill_master)
    finally:
        fleet.close()
        restore_services()
        delete_prefix(sentinel_url, prefix)


def _sentinel_master(url: str) -> int:
    t = parse_url(url)
    for host, p in t.nodes:
        try:
            s = redis.Redis(host=host, port=p, socket_timeout=1)
            try:
                addr = s.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", t.master)
                return int(addr[1])
            finally:
                s.close()
        except (OSError, redis.RedisError):
            continue
    return -1
