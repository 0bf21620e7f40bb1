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
from seamfill.core.errors import DatasetNotFound, JobNotFound
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
        self.scripts = Scripts(redis_conn.Commands(self.redis, self.target), self.keys)
        self.clock = clock

    async def close(self) -> None:
        await self.redis.aclose()

    async def ping(self) -> None:
        try:
            await self.redis.ping()
        except (rexc.RedisError, OSError) as e:
            raise translate(e) from e

    def dataset(self, name: str, field: str = "series.dataset") -> Dataset:
        ds = self.config.dataset(name)
        if ds is None:
            known = ", ".join(sorted(self.config.datasets)) or "none"
            raise DatasetNotFound(
                f"{field} {name!r} is not a dataset of this coordinator: known datasets are {known}"
            )
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
                ("HMGET", self.keys.chunk(ds.name, f"{series.symbol}@{cell}"), "state", "s", "e")
                for cell in cells
            )
        )
        queued: list[TimeRange] = []
        leased: list[TimeRange] = []
        for state, start, end in rows:
            if state in ("queued", "backoff", "parked"):
                queued.append(TimeRange(int(start), int(end)))
            elif state == "leased":
                leased.append(TimeRange(int(start), int(end)))
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
    ) -> Job | None:
        """Plan the chunks ``r`` still needs as a new job; ``None`` when nothing is needed."""
        ds = self.dataset(series.dataset)
        planner.check_range(r, ds, max_chunks=self.config.max_job_chunks)
        now = self.clock()
        part = planner.plannable(r, ds, now)
        if part is None:
            return None
        chunks = planner.plan(r, await self.covered(series, part), ds, now)
        if not chunks:
            return None
        local = secrets.token_hex(6)
        args: list[object] = [
            local,
            series.symbol,
            r.start_us,
            r.end_us,
            int(priority),
            requested_by,
            traceparent,
        ]
        for c in chunks:
            args += [c.cell_us, c.range.start_us, c.range.end_us]
        await self.scripts.dataset(
            "ensure",
            ds.name,
            now,
            keys=[self.keys.coverage(ds.name, series.symbol), self.keys.jobs(ds.name)],
            args=args,
        )
        return await self.job(f"{ds.name}:{local}")

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
        await self.scripts.dataset("job_control", dataset, self.clock(), args=[local, action])
        return await self.job(job_id)
