"""Operator views of the state in Redis: leases, workers, dead letters, stats.

Reads only (plus drain and requeue, which are one command or one script each). Each dataset is
read on its own slot, so these work unchanged on Redis Cluster.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from redis import exceptions as rexc

from seamfill.coordinator.keys import ChunkRef
from seamfill.coordinator.registry import WORKER_REFRESH_US
from seamfill.coordinator.scripts import translate
from seamfill.coordinator.store import Store
from seamfill.core.errors import NotFound
from seamfill.core.types import (
    Chunk,
    ChunkState,
    Dataset,
    DatasetStats,
    Lease,
    Stats,
    TimeRange,
    WorkerInfo,
)

T = TypeVar("T")
# Workers not seen for this long are forgotten when workers are listed.
_WORKER_FORGET_US = 86_400 * 1_000_000
_STATES = {
    "queued": ChunkState.QUEUED,
    "parked": ChunkState.QUEUED,
    "leased": ChunkState.LEASED,
    "backoff": ChunkState.BACKOFF,
    "dead": ChunkState.DEAD,
}


async def _guard(coro: Callable[[], Awaitable[T]]) -> T:
    try:
        return await coro()
    except (rexc.RedisError, OSError) as e:
        raise translate(e) from e


def _datasets(store: Store, name: str) -> list[Dataset]:
    if name:
        return [store.dataset(name, "dataset")]
    return [ds for _, ds in sorted(store.config.datasets.items())]


async def _chunks(store: Store, ds: Dataset, locals_: Sequence[str]) -> list[dict[str, str]]:
    async with store.redis.pipeline(transaction=False) as p:
        for lid in locals_:
            p.hgetall(store.keys.chunk(ds.name, lid))
            p.smembers(store.keys.chunk_jobs(ds.name, lid))
        res = await p.execute()
    out = []
    for i in range(0, len(res), 2):
        h = dict(res[i])
        h["_jobs"] = ",".join(sorted(f"{ds.name}:{j}" for j in res[i + 1]))
        out.append(h)
    return out


def chunk_of(ds: Dataset, lid: str, h: dict[str, str]) -> Chunk:
    ref = ChunkRef.from_local(ds.name, lid)
    return Chunk(
        chunk_id=ref.chunk_id,
        series=ref.series,
        range=TimeRange(int(h.get("s", 0)), int(h.get("e", 0))),
        state=_STATES.get(h.get("state", ""), ChunkState.QUEUED),
        attempts=int(h.get("attempts", 0)),
        last_error=h.get("err", ""),
        job_ids=tuple(j for j in h.get("_jobs", "").split(",") if j),
    )


async def leases(store: Store, dataset: str = "", limit: int = 100) -> list[Lease]:
    async def run() -> list[Lease]:
        out: list[Lease] = []
        for ds in _datasets(store, dataset):
            lids = await store.redis.zrange(store.keys.leases(ds.name), 0, limit - 1)
            for lid, h in zip(lids, await _chunks(store, ds, lids), strict=True):
                if h.get("state") != "leased":
                    continue
                out.append(
                    Lease(
                        lease_id=f"{ds.name}/{lid}",
                        token=int(h.get("token", 0)),
                        chunk=chunk_of(ds, lid, h),
                        dataset=ds,
                        deadline_us=int(h.get("deadline", 0)),
                        worker_id=h.get("worker", ""),
                        traceparent=h.get("tp", ""),
                        granted_us=int(h.get("granted", 0)),
                        progress_until_us=int(h.get("pu", 0)),
                        progress_rows=int(h.get("pr", 0)),
                    )
                )
        return out[:limit]

    return await _guard(run)


async def dead_letters(store: Store, dataset: str = "", limit: int = 100) -> list[Chunk]:
    async def run() -> list[Chunk]:
        out: list[Chunk] = []
        for ds in _datasets(store, dataset):
            lids = await store.redis.zrevrange(store.keys.dead(ds.name), 0, limit - 1)
            out += [
                chunk_of(ds, lid, h)
                for lid, h in zip(lids, await _chunks(store, ds, lids), strict=True)
            ]
        return out[:limit]

    return await _guard(run)


async def requeue_dead(
    store: Store, chunk_ids: Sequence[str], all_: bool, limit: int = 10_000
) -> int:
    by_ds: dict[str, list[str]] = {}
    for cid in chunk_ids:
        ref = ChunkRef.parse(cid, "chunk_ids")
        store.dataset(ref.dataset, "chunk_ids")
        by_ds.setdefault(ref.dataset, []).append(ref.local)
    n = 0
    names = sorted(store.config.datasets) if all_ else sorted(by_ds)
    for name in names:
        n += int(
            await store.scripts.dataset(
                "requeue_dead",
                name,
                store.clock(),
                args=["1" if all_ else "0", limit, *by_ds.get(name, [])],
            )
        )
    return n


async def workers(store: Store) -> list[WorkerInfo]:
    async def run() -> list[WorkerInfo]:
        held: dict[str, int] = {}
        for lease in await leases(store, limit=100_000):
            held[lease.worker_id] = held.get(lease.worker_id, 0) + 1
        gone = await store.redis.zrangebyscore(
            store.keys.workers, "-inf", store.clock() - _WORKER_FORGET_US
        )
        if gone:
            await store.redis.zrem(store.keys.workers, *gone)
            await store.redis.delete(*(store.keys.worker(w) for w in gone))
        ids = await store.redis.zrevrange(store.keys.workers, 0, 999)
        async with store.redis.pipeline(transaction=False) as p:
            for w in ids:
                p.hgetall(store.keys.worker(w))
            rows = await p.execute()
        out = []
        for w, h in zip(ids, rows, strict=True):
            if not h:
                continue
            out.append(
                WorkerInfo(
                    worker_id=w,
                    sources=tuple(s for s in h.get("sources", "").split(",") if s),
                    last_seen_us=int(h.get("last_seen", 0)),
                    leases=held.get(w, 0),
                    draining=h.get("draining") == "1",
                    rows=int(h.get("rows", 0)),
                )
            )
        return out

    return await _guard(run)


async def drain(store: Store, worker_id: str) -> WorkerInfo:
    key = store.keys.worker(worker_id)
    if not await _guard(lambda: store.redis.exists(key)):
        raise NotFound(
            f"worker_id {worker_id!r} has not been seen: list workers with `seamfill admin workers`"
        )
    await _guard(lambda: store.redis.hset(key, "draining", "1"))
    # Replicas cache worker records; the announcement reaches their caches at once.
    await _guard(lambda: store.redis.publish(store.keys.drain_channel, worker_id))
    for w in await workers(store):
        if w.worker_id == worker_id:
            return w
    raise NotFound(f"worker_id {worker_id!r} disappeared while draining")


async def stats(store: Store) -> Stats:
    async def run() -> Stats:
        now = store.clock()
        out: list[DatasetStats] = []
        minute = now // 60_000_000
        for name in sorted(store.config.datasets):
            k = store.keys
            async with store.redis.pipeline(transaction=True) as p:
                p.zcard(k.ready(name))
                p.scard(k.parked(name))
                p.zcard(k.leases(name))
                p.zcard(k.delayed(name))
                p.zcard(k.dead(name))
                p.hgetall(k.stats(name))
                p.hmget(k.rows_min(name), str(minute - 1), str(minute))
                ready, parked, leased, delayed, dead, h, (prev, cur) = await p.execute()
            frac = (now % 60_000_000) / 60_000_000
            rate = (int(prev or 0) * (1 - frac) + int(cur or 0)) / 60
            out.append(
                DatasetStats(
                    dataset=name,
                    queued=ready + parked,
                    leased=leased,
                    backoff=delayed,
                    dead=dead,
                    rows_done=int(h.get("rows_done", 0)),
                    rows_per_second=rate,
                    chunks_done=int(h.get("chunks_done", 0)),
                    lease_expiries=int(h.get("lease_expiries", 0)),
                )
            )
        window = max(2 * store.config.lease_ttl_ms * 1000, 2 * WORKER_REFRESH_US)
        seen = await store.redis.zcount(store.keys.workers, now - window, "+inf")
        return Stats(datasets=tuple(out), workers=seen, as_of_us=now)

    st = await _guard(run)
    # Counted among the newest jobs (bounded work for a call dashboards make every few seconds).
    running = len([j for j in await store.jobs(limit=1_000) if j.state.value == "running"])
    return Stats(
        datasets=st.datasets, jobs_running=running, workers=st.workers, as_of_us=st.as_of_us
    )
