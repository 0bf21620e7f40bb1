"""Lease transitions: acquire, heartbeat, complete, fail, release, reap; workers and rate limits.

Each transition is one Lua script run against the chunk's dataset (one hash-tag slot). A
completion, heartbeat, failure or release whose fencing token is not the chunk's current one is
refused with :class:`LeaseLost` by the script itself, before it writes anything.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis import exceptions as rexc

from seamfill.coordinator.keys import ChunkRef
from seamfill.coordinator.scripts import translate
from seamfill.coordinator.store import Store
from seamfill.core import wire as cv
from seamfill.core.errors import DatasetNotFound, InvalidArgument, LeaseNotFound
from seamfill.core.types import Dataset, Directive, LeaseStatus
from seamfill.v1 import common_pb2

# Expired leases and due retries moved per script run (bounds the time one script blocks Redis).
RECLAIM_BATCH = 200


@dataclass(frozen=True, slots=True)
class Acquired:
    """What one acquire pass did: the leases granted and the expiries it reclaimed on the way."""

    leases: list[common_pb2.Lease]
    """As wire messages: the replica only sends them on."""
    expired: dict[str, int]
    dead: dict[str, int]
    short: set[str]
    """Datasets that had fewer ready chunks than asked for (empty or at their cap)."""


@dataclass(frozen=True, slots=True)
class Failed:
    attempts: int
    dead_lettered: bool
    retry_at_us: int


@dataclass(frozen=True, slots=True)
class Reaped:
    expired: int
    dead: int
    promoted: int
    next_due_us: int


@dataclass(frozen=True, slots=True)
class Progress:
    """A heartbeat's report for one lease."""

    lease_id: str
    token: int
    progress_until_us: int = 0
    rows: int = 0


class Leasing:
    """Lease transitions over a :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.config = store.config
        self.keys = store.keys
        self.scripts = store.scripts
        self._by_sources: dict[tuple[str, ...], list[Dataset]] = {}
        self._datasets_pb: dict[str, common_pb2.Dataset] = {}  # datasets are fixed at start

    @property
    def ttl_us(self) -> int:
        return self.config.lease_ttl_ms * 1_000

    def datasets_for(self, sources: Sequence[str]) -> list[Dataset]:
        """Datasets whose source is in ``sources`` (all when empty), in a stable order."""
        key = tuple(sources)
        found = self._by_sources.get(key)
        if found is None:
            wanted = set(sources)
            found = [
                ds
                for _, ds in sorted(self.config.datasets.items())
                if not wanted or ds.source in wanted
            ]
            if len(self._by_sources) < 1_000:  # bounded: source lists come from callers
                self._by_sources[key] = found
        return found

    def _ref(self, lease_id: str) -> tuple[ChunkRef, Dataset]:
        ref = ChunkRef.parse(lease_id)
        ds = self.config.dataset(ref.dataset)
        if ds is None:
            raise LeaseNotFound(
                f"lease_id {lease_id!r} names dataset {ref.dataset!r}, which is "
                "not a dataset of this coordinator"
            )
        return ref, ds

    async def acquire(self, worker_id: str, datasets: Sequence[Dataset], want: int) -> Acquired:
        """One pass over ``datasets``: grant up to ``want`` chunks (one script per dataset)."""
        leases: list[common_pb2.Lease] = []
        expired: dict[str, int] = {}
        dead: dict[str, int] = {}
        short: set[str] = set()
        for ds in datasets:
            asked = want - len(leases)
            if asked <= 0:
                break
            now = self.store.clock()
            n_exp, n_dead, grants = await self.scripts.dataset(
                "acquire",
                ds.name,
                now,
                args=[
                    self.ttl_us,
                    asked,
                    ds.max_concurrency,
                    worker_id,
                    self.config.max_attempts,
                    RECLAIM_BATCH,
                ],
            )
            if len(grants) < asked:
                short.add(ds.name)
            if n_exp:
                expired[ds.name] = int(n_exp)
            if n_dead:
                dead[ds.name] = int(n_dead)
            leases += [self._lease(ds, worker_id, now, g) for g in grants]
        return Acquired(leases, expired, dead, short)

    def _lease(self, ds: Dataset, worker_id: str, now: int, g: list[Any]) -> common_pb2.Lease:
        """A grant of the acquire script as the wire lease (built once: this is the hot path)."""
        local, token, s, e, attempts, deadline, tp, err, jobs = g
        symbol, _, _ = str(local).rpartition("@")
        chunk_id = f"{ds.name}/{local}"
        return common_pb2.Lease(
            lease_id=chunk_id,
            token=int(token),
            chunk=common_pb2.Chunk(
                chunk_id=chunk_id,
                series=common_pb2.Series(dataset=ds.name, symbol=symbol),
                range=common_pb2.TimeRange(start_us=int(s), end_us=int(e)),
                state=common_pb2.CHUNK_STATE_LEASED,
                attempts=int(attempts),
                last_error=str(err),
                job_ids=sorted(f"{ds.name}:{j}" for j in jobs),
            ),
            dataset=self._dataset_pb(ds),
            deadline_us=int(deadline),
            worker_id=worker_id,
            traceparent=str(tp),
            granted_us=now,
        )

    def _dataset_pb(self, ds: Dataset) -> common_pb2.Dataset:
        """The dataset's message, built once (every lease carries its dataset)."""
        pb = self._datasets_pb.get(ds.name)
        if pb is None:
            pb = self._datasets_pb[ds.name] = cv.dataset_to_pb(ds)
        return pb

    async def heartbeat(self, progress: Sequence[Progress]) -> list[LeaseStatus]:
        """Extend live leases and record progress; one script per dataset involved."""
        out: dict[str, LeaseStatus] = {}
        by_ds: dict[str, list[tuple[ChunkRef, Progress]]] = {}
        for p in progress:
            try:
                ref, _ = self._ref(p.lease_id)
            except (LeaseNotFound, DatasetNotFound) as e:
                out[p.lease_id] = LeaseStatus(p.lease_id, Directive.LOST, 0, e.message)
                continue
            by_ds.setdefault(ref.dataset, []).append((ref, p))
        for dataset, items in by_ds.items():
            args: list[object] = [self.ttl_us]
            for ref, p in items:
                args += [ref.local, p.token, p.progress_until_us, p.rows]
            answers = await self.scripts.dataset(
                "heartbeat", dataset, self.store.clock(), args=args
            )
            for (_, p), (code, deadline, reason) in zip(items, answers, strict=True):
                out[p.lease_id] = LeaseStatus(
                    p.lease_id, Directive(int(code)), int(deadline), str(reason)
                )
        return [out[p.lease_id] for p in progress]

    async def complete(self, lease_id: str, token: int, rows: int) -> list[str]:
        """Cover the chunk's range (up to the settled edge); returns the jobs it finished."""
        if rows < 0:
            raise InvalidArgument(f"rows = {rows} is negative: give the rows written (0 = none)")
        ref, ds = self._ref(lease_id)
        now = self.store.clock()
        done = await self.scripts.dataset(
            "complete",
            ds.name,
            now,
            keys=[self.keys.coverage(ds.name, ref.symbol), self.keys.rows_min(ds.name)],
            args=[ref.local, token, rows, ds.settled_until(now), int(ds.max_concurrency > 0)],
        )
        return [f"{ds.name}:{j}" for j in done]

    async def fail(self, lease_id: str, token: int, reason: str, retryable: bool) -> Failed:
        ref, ds = self._ref(lease_id)
        attempts, dead, at = await self.scripts.dataset(
            "fail",
            ds.name,
            self.store.clock(),
            args=[
                ref.local,
                token,
                reason[:2000],
                1 if retryable else 0,
                self.config.max_attempts,
                self.config.backoff_base_ms * 1_000,
                self.config.backoff_max_ms * 1_000,
                random.random(),
                int(ds.max_concurrency > 0),
            ],
        )
        return Failed(int(attempts), bool(int(dead)), int(at))

    async def release(self, lease_id: str, token: int) -> str:
        ref, ds = self._ref(lease_id)
        where = await self.scripts.dataset(
            "release", ds.name, self.store.clock(), args=[ref.local, token]
        )
        return str(where)

    async def reap(self, dataset: str) -> Reaped:
        """Expired leases and due retries of ``dataset`` back to the queue."""
        expired, dead, promoted, next_due = await self.scripts.dataset(
            "reap", dataset, self.store.clock(), args=[self.config.max_attempts, RECLAIM_BATCH]
        )
        return Reaped(int(expired), int(dead), int(promoted), int(next_due))

    async def worker_seen(self, worker_id: str, sources: Sequence[str] | None) -> bool:
        """Register or refresh a worker (``sources`` None keeps the recorded ones); True when it
        was asked to drain."""
        drain = await self.scripts.plain(
            "worker_seen",
            [self.keys.workers, self.keys.worker(worker_id)],
            [
                self.store.clock(),
                worker_id,
                ",".join(sources or ()),
                "0" if sources is None else "1",
            ],
        )
        return bool(int(drain))

    async def take_tokens(self, source: str, tokens: int) -> tuple[bool, int]:
        """Take ``tokens`` from ``source``'s fleet-wide bucket: (granted, retry after ms)."""
        if tokens <= 0:
            raise InvalidArgument(f"tokens = {tokens}: ask for at least 1 token")
        cfg = self.config.source(source)
        if cfg.rate_per_second <= 0:
            return True, 0
        burst = cfg.burst or max(1, math.ceil(cfg.rate_per_second))
        if tokens > burst:
            raise InvalidArgument(
                f"tokens = {tokens} is more than source {source!r}'s burst of "
                f"{burst}: ask for at most {burst} at a time"
            )
        granted, wait_ms = await self.scripts.plain(
            "take_tokens",
            [self.keys.bucket(source)],
            [self.store.clock(), cfg.rate_per_second, burst, tokens],
        )
        return bool(int(granted)), int(wait_ms)

    async def add_worker_rows(self, rows: dict[str, int]) -> None:
        """Add completed rows to worker records (one pipelined round trip)."""
        try:
            async with self.store.redis.pipeline(transaction=False) as p:
                for worker_id, n in rows.items():
                    p.hincrby(self.keys.worker(worker_id), "rows", n)
                await p.execute()
        except (rexc.RedisError, OSError) as e:
            raise translate(e) from e
