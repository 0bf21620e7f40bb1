"""Synchronous clients for the Redis set-ups the tests use, and a few admin helpers for them.

``sync_client`` opens the same kind of Redis a coordinator would for a ``redis_url`` (one Redis,
a Redis Cluster or the master of a Sentinel group), so tests can look at keys whatever the
backend.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel

from seamfill.coordinator.redis_conn import CLUSTER, SENTINEL, parse_url


def sync_client(url: str, **kw: Any) -> Any:
    """A blocking client for ``url`` (``redis.Redis`` or ``redis.RedisCluster``)."""
    t = parse_url(url)
    if t.kind == CLUSTER:
        return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in t.nodes], **kw)
    if t.kind == SENTINEL:
        return Sentinel(list(t.nodes), socket_timeout=2).master_for(t.master, db=t.db, **kw)
    return redis.Redis.from_url(t.url, **kw)


def delete_prefix(url: str, prefix: str) -> None:
    """Delete every key starting with ``prefix`` (on every primary of a cluster)."""
    r = sync_client(url)
    try:
        if isinstance(r, RedisCluster):
            for node in r.get_primaries():
                keys = list(r.scan_iter(match=prefix + "*", count=1000, target_nodes=node))
                for k in keys:
                    r.delete(k)
            return
        batch: list[bytes] = []
        for k in r.scan_iter(match=prefix + "*", count=1000):
            batch.append(k)
            if len(batch) >= 500:
                r.delete(*batch)
                batch.clear()
        if batch:
            r.delete(*batch)
    finally:
        r.close()


def keys_per_primary(url: str, prefix: str) -> dict[str, int]:
    """How many keys under ``prefix`` each primary of the cluster holds, by node address."""
    r = sync_client(url)
    try:
        return {
            node.name: sum(
                1 for _ in r.scan_iter(match=prefix + "*", count=1000, target_nodes=node)
            )
            for node in r.get_primaries()
        }
    finally:
        r.close()


REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Shard:
    """The primary serving a slot and its replica, as ports and process ids on loopback."""

    primary: int
    replica: int
    primary_pid: int
    replica_pid: int


def _pid(port: int) -> int:
    r = redis.Redis(port=port, socket_timeout=2)
    try:
        return int(r.info("server")["process_id"])
    finally:
        r.close()


def shard_of(url: str, key: str) -> Shard:
    """The primary of ``key``'s slot in the cluster at ``url``, and a replica of it."""
    r = sync_client(url)
    try:
        node = r.get_node_from_key(key)
        table = r.execute_command("CLUSTER NODES", target_nodes=node)
        me = next(v for v in table.values() if "myself" in v["flags"])
        replica = next(
            int(addr.split("@")[0].rsplit(":", 1)[1])
            for addr, v in table.items()
            if v["master_id"] == me["node_id"] and "fail" not in v["flags"]
        )
    finally:
        r.close()
    return Shard(node.port, replica, _pid(node.port), _pid(replica))


def dataset_per_primary(url: str, prefix: str, names: list[str]) -> dict[str, str]:
    """``names`` mapped to the primary (host:port) their dataset's slot is on."""
    r = sync_client(url)
    try:
        return {n: r.get_node_from_key(f"{prefix}{{{n}}}:x").name for n in names}
    finally:
        r.close()


def spread_names(url: str, prefix: str, base: str, per_primary: int) -> list[str]:
    """Dataset names ``base``+suffix, ``per_primary`` on each primary of the cluster."""
    r = sync_client(url)
    try:
        wanted = {n.name: per_primary for n in r.get_primaries()}
        out: list[str] = []
        i = 0
        while any(wanted.values()):
            name = f"{base}{i}"
            owner = r.get_node_from_key(f"{prefix}{{{name}}}:x").name
            if wanted.get(owner, 0) > 0:
                wanted[owner] -= 1
                out.append(name)
            i += 1
        return out
    finally:
        r.close()


def dbsize_per_primary(url: str) -> dict[str, int]:
    """DBSIZE of every primary of the cluster, by address."""
    r = sync_client(url)
    try:
        return {n.name: int(r.execute_command("DBSIZE", target_nodes=n)) for n in r.get_primaries()}
    finally:
        r.close()


def cluster_healthy(url: str) -> bool:
    """Every slot served and every primary with a replica in sync."""
    try:
        r = sync_client(url, socket_timeout=2)
    except (redis.RedisError, OSError):
        return False
    try:
        info = r.execute_command("CLUSTER INFO", target_nodes=r.get_random_node())
        if info.get("cluster_state") != "ok":
            return False
        for n in r.get_primaries():
            repl = r.execute_command("INFO", "replication", target_nodes=n)
            if int(repl.get("connected_slaves", 0)) < 1:
                return False
            if repl.get("slave0", {}).get("state") != "online":
                return False
        return True
    except (redis.RedisError, OSError):
        return False
    finally:
        r.close()


def restore_services() -> None:
    """Restart whatever node a test killed (it rejoins as a replica) and wait for the cluster
    to be whole again (``make services-cluster`` is idempotent)."""
    subprocess.run(
        ["bash", str(REPO / ".ci/services-cluster.sh"), "start"],
        check=True,
        capture_output=True,
        timeout=120,
    )


def wait_until(cond: Any, timeout: float, what: str) -> float:
    """Poll ``cond`` until true; the seconds it took. Fails naming ``what``."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - t0


def kill(pid: int, sig: int = signal.SIGKILL) -> None:
    os.kill(pid, sig)
