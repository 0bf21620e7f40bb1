"""State in Redis: coverage, jobs and chunks. Every transition is one Lua script (``lua/``).

Coverage reads are single commands sent together in one pipeline (one round trip; on a cluster
the node of the dataset's slot); reads that need several commands to agree use MULTI/EXEC
pipelines (same slot, so a cluster runs them too). Nothing is cached in the process, so any
number of replicas can share one Redis. Lease transitions live in :mod:`.leasing`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as rexc

from seamfill.coordinator import planner, redis_conn
from seamfill.coordinator.config import CoordinatorConfig
from seamfill.coordinator.keys import Keys, split_job_id
from seamfill.coordinator.scripts import Scripts, translate
from seamfill.core import ranges
from seamfill.core.errors import (
    CoordinatorUnavailable,
    DatasetNotFound,
    InvalidArgument,
    JobNotFound,
)
from seamfill.core.types import (
    Coverage,
    Dataset,
    Job,
    JobProgress,
    JobState,
    Priority,
    Series,
    TimeRange,
)

# GetCoverage looks up queued/leased chunks only for this many gap cells (beyond it, the answer
# would cost more than the coverage itself).
_MAX_CELL_LOOKUPS = 2_000
# A coverage read first asks for this many intervals from the start of the range, which is one
# command (so atomic without MULTI); a range holding more is read again in full.
_COVERED_PAGE = 64
# A range spanning at most this many chunk cells reads its coverage and asks whether any of its
# cells has a chunk (one EXISTS of many keys) in one round trip; the chunks of its gap cells are
# then read only if one has. Measured at 64 cells, a probe that finds a chunk costs about 30 us and
# one that finds none saves about 90 (the second round trip); at 256 cells the probe costs more
# than it saves. (Reading every cell's chunk in the first round trip instead costs a command per
# cell, several us each, so it loses whenever more than a few cells are covered.)
_PROBED_CELLS = 64
# Cells one ensure script plans (each costs tens of us in Redis): a batch stays far below the
# 50 ms any one Redis call may take, whatever the size of the request.
PLAN_BATCH = 64
# Scheduling (see ensure.lua): a priority class outranks the next by at most this long, and
# each chunk of a job ranks this much behind the one before it (fair between jobs).
PRIORITY_AGING_US = 300_000_000
CHUNK_SPACING_US = 1_000_000
# An idempotency key is remembered this long, and is at most this long.
IDEMPOTENCY_TTL_S = 86_400
MAX_IDEMPOTENCY_KEY = 128
# EnsureRange is rate-limited per caller (requested_by) in chunk cells: a burst of this many
# requests of max_job_chunks, then one such request's cells per second.
ENSURE_BURST_REQUESTS = 2
# A job whose planning made no progress this long is planned on by any replica's reaper.
PLANNING_IDLE_US = 30_000_000


def now_us() -> int:
    return time.time_ns() // 1_000


def parse_interval(member: str) -> TimeRange:
    a, _, b = member.partition(":")
    return TimeRange(int(a), int(b))


def _covered_from_head(head: list[str], r: TimeRange) -> list[TimeRange] | None:
    """Covered parts of ``r`` from the first intervals ending after its start (a read of at most
    ``_COVERED_PAGE``), or ``None`` when that read may have stopped short of ``r``'s end."""
    found: list[TimeRange] = []
    for member in head:
        interval = parse_interval(member)
        found.append(interval)
        if interval.end_us > r.end_us:  # the one straddling the end, or the first after it
            return ranges.intersect(r, found)
    return ranges.intersect(r, found) if len(head) < _COVERED_PAGE else None


def _covered_head(key: str, r: TimeRange) -> tuple[Any, ...]:
    """The first ``_COVERED_PAGE`` intervals of coverage ``key`` ending after ``r`` starts."""
    return ("ZRANGEBYSCORE", key, f"({r.start_us}", "+inf", "LIMIT", 0, _COVERED_PAGE)


class Store:
    """Coverage, jobs and chunks of every dataset in the config."""

    def __init__(
        self,
        config: CoordinatorConfig,
        client: aioredis.Redis | None = None,
        *,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self.config = config
        self.keys = Keys(config.key_prefix)
        # One Redis, a Redis Cluster or Redis with Sentinel, by the URL (see redis_conn).
        self.target = redis_conn.parse_url(config.redis_url)
        self.redis: Any = client or redis_conn.connect(self.target)
        self.scripts = Scripts(
            redis_conn.Commands(self.redis, self.target),
            self.keys,
            {name: ds.max_concurrency for name, ds in config.datasets.items()},
        )
        self.clock = clock

    async def close(self) -> None:
        await self.redis.aclose()

    async def ping(self) -> None:
        try:
            await self.redis.ping()
        except (rexc.RedisError, OSError) as e:
            raise translate(e) from e

    def dataset(
        self, name: str, field: str = "series.dataset", symbol: str | None = None
    ) -> Dataset:
        """The dataset called ``name``; with ``symbol``, also checks its symbol rule."""
        ds = self.config.dataset(name)
        if ds is None:
            known = ", ".join(sorted(self.config.datasets)) or "none"
            raise DatasetNotFound(
                f"{field} {name!r} is not a dataset of this coordinator: known datasets are {known}"
            )
        if symbol is not None:
            ds.check_symbol(symbol)
        return ds

    # -- coverage ------------------------------------------------------------------------------

    async def covered(self, series: Series, r: TimeRange) -> list[TimeRange]:
        """Covered parts of ``r``: intervals ending inside it plus the one straddling its end."""
        key = self.keys.coverage(series.dataset, series.symbol)
        [head] = await self._read(_covered_head(key, r))
        found = _covered_from_head(head, r)
        return found if found is not None else await self._covered_all(key, r)

    async def _covered_all(self, key: str, r: TimeRange) -> list[TimeRange]:
        try:
            async with self.redis.pipeline(transaction=True) as p:
                p.zrangebyscore(key, f"({r.start_us}", r.end_us)
                p.zrangebyscore(key, f"({r.end_us}", "+inf", start=0, num=1)
                inside, after = await p.execute()
        except (rexc.RedisError, OSError) as e:
            raise translate(e) from e
        return ranges.intersect(r, (parse_interval(m) for m in [*inside, *after]))

    async def coverage(self, series: Series, r: TimeRange) -> Coverage:
        """Covered ranges, gaps, and what is queued or leased of ``r``."""
        ds = self.dataset(series.dataset)
        now = self.clock()
        span = ds.chunk_span_us
        whole = ranges.align_outward(r, span)
        head: list[TimeRange] | None = None
        any_chunk = True
        if whole.duration_us // span <= _PROBED_CELLS:
            cells = range(whole.start_us, whole.end_us, span)
            head, any_chunk = await self._covered_and_any_chunk(ds, series, r, cells)
        covered = head if head is not None else await self.covered(series, r)
        gaps = ranges.subtract(r, covered)
        queued: list[TimeRange] = []
        leased: list[TimeRange] = []
        if gaps and any_chunk:
            queued, leased = await self._in_flight(ds, series, gaps)
        return Coverage(
            series=series,
            range=r,
            covered=tuple(covered),
            gaps=tuple(gaps),
            queued=tuple(ranges.merge(ranges.intersect(r, queued))),
            leased=tuple(ranges.merge(ranges.intersect(r, leased))),
            as_of_us=now,
            settled_until_us=ds.settled_until(now),
        )

    async def _covered_and_any_chunk(
        self, ds: Dataset, series: Series, r: TimeRange, cells: range
    ) -> tuple[list[TimeRange] | None, bool]:
        """In one round trip: the covered parts of ``r`` (``None`` when it holds more intervals
        than one read returns) and whether any of ``cells`` has a chunk."""
        key = self.keys.coverage(ds.name, series.symbol)
        chunk_keys = [self.keys.chunk(ds.name, f"{series.symbol}@{cell}") for cell in cells]
        head, chunks = await self._read(_covered_head(key, r), ("EXISTS", *chunk_keys))
        return _covered_from_head(head, r), chunks > 0

    async def _in_flight(
        self, ds: Dataset, series: Series, gaps: list[TimeRange]
    ) -> tuple[list[TimeRange], list[TimeRange]]:
        span = ds.chunk_span_us
        cells: list[int] = []
        for g in gaps:
            first, last = ranges.align_down(g.start_us, span), ranges.align_up(g.end_us, span)
            cells.extend(range(first, last, span))
            if len(cells) > _MAX_CELL_LOOKUPS:
                return [], []
        rows = await self._read(
            *(
                (
                    "HMGET",
                    self.keys.chunk(ds.name, f"{series.symbol}@{cell}"),
                    "state",
                    "s",
                    "e",
                    "want",
                )
                for cell in cells
            )
        )
        queued: list[TimeRange] = []
        leased: list[TimeRange] = []
        for state, start, end, want in rows:
            if state is None:
                continue
            fetch = TimeRange(int(start), int(end))
            wanted = [parse_interval(m) for m in want.split(",")] if want else [fetch]
            if state in ("queued", "backoff", "parked"):
                queued += wanted
            elif state == "leased":  # the rest of its want waits for the lease to end
                leased.append(fetch)
                queued += [g for w in wanted for g in ranges.subtract(w, [fetch])]
        return queued, leased

    async def _read(self, *commands: tuple[Any, ...]) -> list[Any]:
        """The replies to ``commands``, sent together (one round trip, each command atomic on
        its own)."""
        try:
            return await self.scripts.pipe.execute_many(*commands)
        except (rexc.RedisError, OSError) as e:
            raise translate(e) from e

    # -- jobs ----------------------------------------------------------------------------------

    async def ensure(
        self,
        series: Series,
        r: TimeRange,
        priority: Priority,
        *,
        requested_by: str = "",
        traceparent: str = "",
        idempotency_key: str = "",
    ) -> Job | None:
        """Plan the chunks ``r`` still needs as a new job; ``None`` when nothing is needed.

        The script derives the chunks from the range and the coverage in Redis, in batches of
        :data:`PLAN_BATCH` cells (the job cannot end before its last batch), so no single call
        holds Redis for long."""
        ds = self.dataset(series.dataset)
        planner.check_range(r, ds, max_chunks=self.config.max_job_chunks)
        if len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
            raise InvalidArgument(
                f"idempotency_key {idempotency_key[:20]!r}... is {len(idempotency_key)} "
                f"characters: give at most {MAX_IDEMPOTENCY_KEY} (e.g. a UUID)"
            )
        if idempotency_key:
            [seen] = await self._read(("GET", f"{self.keys.base(ds.name)}idem:{idempotency_key}"))
            if seen and await self._read(("EXISTS", self.keys.job(ds.name, seen))) == [1]:
                return await self.job(f"{ds.name}:{seen}")
        part = planner.plannable(r, ds, self.clock())
        if part is None or not ranges.subtract(part, await self.covered(series, part)):
            return None
        await self._ensure_budget(requested_by, r, ds)
        local = secrets.token_hex(6)
        job = await self._plan(
            ds,
            [local, series.symbol, r.start_us, r.end_us, int(priority), requested_by, traceparent],
            "",
            idempotency_key,
        )
        return await self.job(f"{ds.name}:{job}")

    async def _plan(self, ds: Dataset, job: list[object], cursor: str, key: str = "") -> str:
        """Run the ensure script from ``cursor`` until the job is planned; returns its id."""
        head = [*job, ds.chunk_span_us, ds.interval_us, ds.settle_us]
        tail = [PLAN_BATCH, PRIORITY_AGING_US, CHUNK_SPACING_US, key, IDEMPOTENCY_TTL_S]
        keys = [self.keys.coverage(ds.name, str(job[1])), self.keys.jobs(ds.name)]
        while True:
            nxt, _, _, _, local = await self.scripts.dataset(
                "ensure", ds.name, keys=keys, args=[*head, cursor, *tail]
            )
            if int(nxt) < 0:
                return str(local)
            cursor = str(nxt)

    async def resume_planning(self, dataset: str, idle_us: int = PLANNING_IDLE_US) -> int:
        """Plan the rest of jobs whose planning stopped (its replica died) ``idle_us`` ago or
        more; returns how many were resumed. Safe on every replica at once."""
        ds = self.dataset(dataset)
        base = self.keys.base(dataset)
        [now_s, now_u], stale = await self._read(
            ("TIME",), ("ZRANGE", f"{base}planning", 0, 9, "WITHSCORES")
        )
        if stale and not isinstance(stale[0], list | tuple):  # a flat reply: pair it up
            stale = list(zip(stale[::2], stale[1::2], strict=True))
        now = int(now_s) * 1_000_000 + int(now_u)
        offset = await self._read(("HGET", self.keys.stats(dataset), "clock_offset_us"))
        now += int(offset[0] or 0)
        n = 0
        for local, at in stale:
            if now - int(float(at)) < idle_us:
                continue
            try:
                h = await self.redis.hgetall(self.keys.job(dataset, local))
                if not h.get("cursor"):
                    await self.redis.zrem(f"{base}planning", local)
                    continue
            except (rexc.RedisError, OSError) as e:
                raise translate(e) from e
            fields = [h["sym"], h["s"], h["e"], h["prio"], h.get("by", ""), h.get("tp", "")]
            await self._plan(ds, [local, *fields], h["cursor"])
            n += 1
        return n

    async def _ensure_budget(self, caller: str, r: TimeRange, ds: Dataset) -> None:
        """Take the request's cells from its caller's budget (a fleet-wide token bucket)."""
        span = ds.chunk_span_us
        cells = (ranges.align_up(r.end_us, span) - ranges.align_down(r.start_us, span)) // span
        rate = self.config.max_job_chunks
        burst = ENSURE_BURST_REQUESTS * rate
        granted, wait_ms = await self.scripts.plain(
            "take_tokens",
            [self.keys.bucket(f"ensure:{caller[:256] or '-'}")],
            [rate, burst, min(cells, burst)],
        )
        if not int(granted):
            raise CoordinatorUnavailable(
                f"requested_by {caller[:40]!r} asked for more than {rate} chunks per second "
                f"over its burst of {burst}: retry after {int(wait_ms)} ms"
            )

    async def job(self, job_id: str) -> Job:
        dataset, local = split_job_id(job_id)
        if dataset not in self.config.datasets:
            raise JobNotFound(f"job_id {job_id!r}: no dataset {dataset!r} on this coordinator")
        try:
            h = await self.redis.hgetall(self.keys.job(dataset, local))
        except (rexc.RedisError, OSError) as e:
            raise translate(e) from e
        if not h:
            raise JobNotFound(
                f"job_id {job_id!r} does not exist (or expired): list jobs with "
                "`seamfill admin jobs`"
            )
        return self._job(dataset, local, h)

    def _job(self, dataset: str, local: str, h: dict[str, str]) -> Job:
        state = JobState(h.get("state", "running"))
        created, updated = int(h.get("created", 0)), int(h.get("updated", 0))
        end = (
            updated
            if state in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)
            else self.clock()
        )
        done, total, rows = int(h.get("done", 0)), int(h.get("total", 0)), int(h.get("rows", 0))
        rate, eta = planner.job_rates(rows, done, total, (end - created) / 1e6)
        if state is JobState.DONE:
            eta = 0.0
        progress = JobProgress(
            chunks_total=total,
            chunks_done=done,
            chunks_failed=int(h.get("failed", 0)),
            chunks_leased=max(0, int(h.get("leased", 0))),
            rows_done=rows,
            rows_per_second=rate,
            eta_seconds=eta,
        )
        return Job(
            job_id=f"{dataset}:{local}",
            series=Series(dataset, h["sym"]),
            range=TimeRange(int(h["s"]), int(h["e"])),
            priority=Priority(int(h["prio"])),
            state=state,
            progress=progress,
            requested_by=h.get("by", ""),
            created_us=created,
            updated_us=updated,
            error=h.get("err", ""),
            traceparent=h.get("tp", ""),
        )

    async def jobs(self, states: Sequence[JobState] = (), limit: int = 100) -> list[Job]:
        """Newest jobs first, of every dataset, optionally only in ``states``."""
        out: list[Job] = []
        try:
            for name in sorted(self.config.datasets):
                idx = self.keys.jobs(name)
                locals_ = await self.redis.zrevrange(idx, 0, max(limit * 4, 100) - 1)
                async with self.redis.pipeline(transaction=False) as p:
                    for local in locals_:
                        p.hgetall(self.keys.job(name, local))
                    rows = await p.execute()
                gone = [lc for lc, h in zip(locals_, rows, strict=True) if not h]
                if gone:
                    await self.redis.zrem(idx, *gone)
                out += [self._job(name, lc, h) for lc, h in zip(locals_, rows, strict=True) if h]
        except (rexc.RedisError, OSError) as e:
            raise translate(e) from e
        if states:
            out = [j for j in out if j.state in states]
        out.sort(key=lambda j: j.created_us, reverse=True)
        return out[:limit]

    async def control_job(self, job_id: str, action: str) -> Job:
        """Pause, resume or cancel a job (one script)."""
        dataset, local = split_job_id(job_id)
        if dataset not in self.config.datasets:
            raise JobNotFound(f"job_id {job_id!r}: no dataset {dataset!r} on this coordinator")
        await self.scripts.dataset("job_control", dataset, args=[local, action])
        return await self.job(job_id)
