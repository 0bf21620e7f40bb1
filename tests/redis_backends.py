"""Synchronous clients for the Redis set-ups the tests use, and a few admin helpers for them.

``sync_client`` opens the same kind of Redis a coordinator would for a ``redis_url`` (one Redis,
a Redis Cluster or the master of a Sentinel group), so tests can look at keys whatever the
backend.
"""

from __future__ import annotations

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
            node.name: sum(1 for _ in r.scan_iter(match=prefix + "*", count=1000, target_nodes=node))
            for node in r.get_primaries()
        }
    finally:
        r.close()
